// zod schemas for the v1 API: the single source for request validation and /openapi.json.
import { z } from "zod";
import { STATUSES } from "../proposal/types.ts";

/** Visible text: at least one non-space character, at most `max` characters. */
const text = (max: number, what: string) =>
  z.string().max(max, `${what} must be at most ${max} characters`).regex(/\S/, `${what} must not be blank`);

export const SlackUserId = z.string().regex(/^[UW][A-Z0-9]{2,}$/, "must be a Slack user id (U… or W…)");

export const CreateProposalBody = z
  .object({
    action: z
      .object({
        type: z.string().min(1).max(100).regex(/^[A-Za-z0-9_.:-]+$/, "must be an action type name like k8s.rollout_restart"),
        params: z.record(z.string(), z.unknown()).default({}),
      })
      .strict(),
    summary: text(300, "summary"),
    reason: text(3000, "reason"),
    blast_radius: text(3000, "blast_radius"),
    rollback: text(3000, "rollback"),
    requested_by: SlackUserId.optional(),
    ttl_seconds: z.number().int("must be a whole number of seconds").optional(),
    callback_url: z.string().max(2048).url().optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
export type CreateProposalBody = z.infer<typeof CreateProposalBody>;

export const ResultBody = z
  .object({
    status: z.enum(["succeeded", "failed"]),
    output: z.string().max(60_000).default(""),
  })
  .strict();

export const WaitQuery = z
  .object({ wait: z.coerce.number().int().min(0).max(60).optional() })
  .strict();

/** ISO 8601 date-time or Unix milliseconds, as a number of ms. */
const instant = z.string().transform((value, ctx) => {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: "custom", message: "must be an ISO 8601 date-time or Unix milliseconds" });
    return z.NEVER;
  }
  return ms;
});

export const AuditQueryParams = z
  .object({
    proposal_id: z.string().max(200).optional(),
    type: z.string().max(100).optional(),
    actor: z.string().max(200).optional(),
    since: instant.optional(),
    until: instant.optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    cursor: z.string().regex(/^[0-9]{1,15}$/, "must be a next_cursor value from a previous page").optional(),
    format: z.enum(["json", "ndjson", "csv"]).default("json"),
  })
  .strict();

// ---- response shapes (documentation only: the code builds them from typed objects) ----

const Approval = z.object({ user: z.string(), at: z.string() });

export const ProposalResponse = z.object({
  id: z.string().describe("prp_… — unguessable"),
  status: z.enum(STATUSES),
  action: z.object({ type: z.string(), params: z.record(z.string(), z.unknown()) }),
  summary: z.string(),
  reason: z.string(),
  blast_radius: z.string(),
  rollback: z.string(),
  requested_by: z.string().nullable(),
  created_by: z.string().describe("name of the API key that created it"),
  created_at: z.string(),
  expires_at: z.string(),
  plan_sha256: z.string(),
  callback_url: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()).nullable(),
  rule: z.object({
    approvers: z.array(z.string()),
    required_approvals: z.number(),
    allow_self_approval: z.boolean(),
    requester_only: z.boolean(),
    confirm: z.boolean(),
    channel: z.string().nullable(),
    escalation: z.object({ approvers: z.array(z.string()), channel: z.string().nullable(), extend_ttl_seconds: z.number() }).nullable(),
  }),
  approvals: z.array(Approval),
  escalated: z.object({ by: z.string(), at: z.string(), prior_approvals: z.array(Approval) }).nullable(),
  decision: z
    .object({ by: z.string(), at: z.string(), outcome: z.enum(["approved", "denied", "expired", "cancelled"]), reason: z.string().optional() })
    .nullable(),
  dispatch: z.object({ attempts: z.number(), last_error: z.string().nullable(), dispatched_at: z.string().nullable() }),
  result: z.object({ status: z.enum(["succeeded", "failed"]), output: z.string(), at: z.string() }).nullable(),
});

export const AuditEventResponse = z.object({
  seq: z.number(),
  at: z.string(),
  proposal_id: z.string(),
  idx: z.number().describe("position in the proposal's hash chain, from 1"),
  type: z.string(),
  actor: z.string(),
  details: z.record(z.string(), z.unknown()),
  prev_hash: z.string(),
  hash: z.string(),
});

export const AuditPage = z.object({ events: z.array(AuditEventResponse), next_cursor: z.string().nullable() });

export const ErrorResponse = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.array(z.object({ path: z.string(), message: z.string() })),
  }),
});

export const Health = z.object({ ok: z.boolean(), version: z.string() });
