// zod schemas for the v1 API: the single source for request validation and /openapi.json.
import { z } from "zod";
import { ACTION_TYPE_PATTERN } from "../config/action-patterns.ts";
import { RECIPIENT_MESSAGE, RECIPIENT_PATTERN } from "../config/policy.ts";
import { RunnerResult } from "../dispatch/runner-answer.ts";
import { GROUP_CARD_MAX_ITEMS, GROUP_KEY_MAX_CHARS, GROUP_WINDOW_SECONDS } from "../group/limits.ts";
import { PROPOSAL_KINDS, STATUSES, VERIFY_ANSWERS } from "../proposal/types.ts";
import { PLAN_MAX_CHARS } from "../slack/plan.ts";

/** Visible text: at least one non-space character, at most `max` characters. */
const text = (max: number, what: string) =>
  z.string().max(max, `${what} must be at most ${max} characters`).regex(/\S/, `${what} must not be blank`);

export const SlackUserId = z.string().regex(/^[UW][A-Z0-9]{2,}$/, "must be a Slack user id (U… or W…)");

export const Recipient = z.string().regex(RECIPIENT_PATTERN, RECIPIENT_MESSAGE);

/** A group key: short printable ASCII, no leading or trailing space (an Alertmanager group label, a ticket id). */
export const GroupKey = z
  .string()
  .max(GROUP_KEY_MAX_CHARS, `must be at most ${GROUP_KEY_MAX_CHARS} characters`)
  .regex(/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/, "must be printable ASCII, not blank, no edge spaces");

/**
 * The create body. `blast_radius` and `rollback` are required for approvals (SPEC 4) and optional for
 * verification prompts (`kind: "verify"`, or an action whose policy says so), where they default to "".
 */
function createBodyWith(texts: "required" | "optional") {
  const blastRadius = text(3000, "blast_radius");
  const rollback = text(3000, "rollback");
  return z
    .object({
      action: z
        .object({
          type: z
            .string()
            .min(1)
            .max(100)
            .regex(/^[A-Za-z0-9_.:-]+$/, "must be an action type name like k8s.rollout_restart"),
          params: z
            .record(z.string(), z.unknown())
            .default({})
            .describe(
              "shown whole on the Slack card, written as JSON in printable ASCII (\\uXXXX for anything else) with " +
                `& < > as &amp; &lt; &gt;: at most ${PLAN_MAX_CHARS} characters so written, else 422 plan_too_large`,
            ),
        })
        .strict(),
      summary: text(300, "summary"),
      reason: text(3000, "reason"),
      blast_radius: (texts === "required" ? blastRadius : blastRadius.optional()).describe(
        'required, except for verification prompts (kind verify), where it defaults to ""',
      ),
      rollback: (texts === "required" ? rollback : rollback.optional()).describe(
        'required, except for verification prompts (kind verify), where it defaults to ""',
      ),
      requested_by: SlackUserId.optional(),
      ttl_seconds: z
        .number({ error: "must be a whole number of seconds" })
        .int("must be a whole number of seconds")
        .optional(),
      callback_url: z.string().max(2048).url().optional(),
      metadata: z.record(z.string(), z.unknown()).optional(),
      kind: z
        .enum(PROPOSAL_KINDS)
        .optional()
        .describe(
          "optional; when given it must match the action's policy kind (approval, or verify for a verification prompt)",
        ),
      recipient: Recipient.optional().describe(
        "a verification prompt's addressee for signed links (e-mail address or opaque id); required when its action enables links",
      ),
      group_key: GroupKey.optional().describe(
        "approvals only: the proposer's pending proposals of the same action and group_key share one Slack card " +
          `(at most ${GROUP_CARD_MAX_ITEMS} a card, opened within ${GROUP_WINDOW_SECONDS} s of each other); each is ` +
          "still decided, audited and dispatched on its own",
      ),
    })
    .strict();
}

/** Approval proposals (and the OpenAPI description of the body). */
export const CreateProposalBody = createBodyWith("required");
/** Verification prompts: the same fields, blast_radius and rollback optional. */
export const CreateVerifyBody = createBodyWith("optional");

/** An asynchronous runner result: the result every runner answer is read with, plus the proposal it is for. */
export const ResultBody = RunnerResult.extend({
  // Optional, recommended: puts the proposal inside what the signature covers.
  proposal_id: z.string().max(200).optional(),
}).strict();

export const WaitQuery = z.object({ wait: z.coerce.number().int().min(0).max(60).optional() }).strict();

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
    cursor: z
      .string()
      .regex(/^[0-9]{1,15}$/, "must be a next_cursor value from a previous page")
      .optional(),
    format: z.enum(["json", "ndjson", "csv"]).default("json"),
  })
  .strict();

/** GET /v1/stats: proposals created in [since, until) (default: the 30 days before now), of one action or all. */
export const StatsQueryParams = z
  .object({
    since: instant.optional().describe("ISO 8601 or Unix ms; default: 30 days before until"),
    until: instant.optional().describe("ISO 8601 or Unix ms, exclusive; default: now"),
    action: z.string().regex(ACTION_TYPE_PATTERN, "must be an action type (a-z, 0-9, _ . -)").optional(),
  })
  .strict();

/** GET /metrics takes no parameters. */
export const MetricsParams = z.object({}).strict();

const Seconds = z.number().nullable();

/** GET /v1/stats: per action, formulas in docs/stats.md. */
export const StatsResponse = z.object({
  since: z.string(),
  until: z.string(),
  truncated: z.boolean().describe("more proposals than one answer reads (5000, the earliest first): narrow the window"),
  actions: z.array(
    z.object({
      action: z.string(),
      proposals: z.number().describe("created in the window"),
      by_status: z.record(z.string(), z.number()).describe("their status now"),
      decided: z.number().describe("approved, denied or answered by a person"),
      time_to_decision_seconds: z.object({ p50: Seconds, p90: Seconds, max: Seconds }),
      decided_in_last_tenth: z.object({ count: z.number(), share: z.number().nullable() }),
      approvals_by_approver: z.record(z.string(), z.number()),
      expired_untouched: z.number().describe("expired with no click or link at all"),
    }),
  ),
});

/** GET /v1/audit/checkpoint takes no parameters; like every route it refuses unknown ones. */
export const AuditCheckpointParams = z.object({}).strict();

// ---- response shapes (documentation only: the code builds them from typed objects) ----

const Approval = z.object({
  user: z.string().describe("U… for a Slack click, link:<e-mail signed in> for a link"),
  person: z
    .string()
    .optional()
    .describe("who that is: the policy's people directory name, else the identity itself; M-of-N counts these"),
  at: z.string(),
  break_glass: z.literal(true).optional().describe("given through break-glass: this person approved alone"),
});

const VerifyLabels = z.object({ yes: z.string(), no: z.string(), unsure: z.string() });

export const ProposalResponse = z.object({
  id: z.string().describe("prp_… — unguessable"),
  kind: z.enum(PROPOSAL_KINDS).describe('approval, or verify for a verification prompt ("was this you?")'),
  status: z.enum(STATUSES),
  action: z.object({ type: z.string(), params: z.record(z.string(), z.unknown()) }),
  summary: z.string(),
  reason: z.string(),
  blast_radius: z.string(),
  rollback: z.string(),
  requested_by: z.string().nullable(),
  recipient: z.string().nullable().describe("a verification prompt's addressee for signed links"),
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
    escalation: z
      .object({
        approvers: z.array(z.string()),
        channel: z.string().nullable(),
        extend_ttl_seconds: z.number(),
        after_seconds: z.number().optional().describe("escalates by itself this long after creation if undecided"),
      })
      .nullable(),
    remind_at: z.array(z.number()).optional().describe("fractions of the TTL at which the undecided are reminded"),
    links: z
      .object({ recipients: z.array(z.string()), teams_recipient: z.string().nullable() })
      .optional()
      .describe("present when the action enables signed links"),
    verify_labels: VerifyLabels.optional().describe("present for verification prompts"),
    risk: z
      .object({
        index: z.number().describe("the rule's place in the action's rules when the proposal was created"),
        when: z.string().describe("its CEL condition"),
        label: z.string().describe("what the card shows: its label, else its condition"),
        approvers: z
          .array(z.string())
          .nullable()
          .describe("narrowed approvers: only those also in approvers (once escalated, escalation.approvers) decide"),
        required_approvals: z
          .number()
          .nullable()
          .optional()
          .describe("the rule's own M: the least the escalated decision needs too (null: the rule left M as it was)"),
        ttl_seconds: z.number().nullable(),
        unevaluable: z.boolean().describe("the condition could not be evaluated, so the rule applied (doubt tightens)"),
      })
      .optional()
      .describe("present when a risk rule tightened this proposal; its tightening is already in the fields above"),
    break_glass: z
      .object({ approvers: z.array(z.string()), reason_required: z.literal(true) })
      .optional()
      .describe("present when the action has break-glass: one of these may approve alone, with a reason"),
    freeze: z
      .object({ name: z.string(), ends_at: z.string() })
      .optional()
      .describe("the change freeze the proposal was created in: only break-glass can approve it"),
    edit: z
      .object({
        params: z.array(z.string()).describe("the params an approver may edit before approving"),
        params_schema: z.record(z.string(), z.unknown()),
        schema: z.record(z.string(), z.unknown()).nullable().describe("the action's edit_schema"),
        rules: z.array(z.string()).describe("its risk rules' conditions: an edit may not change which applies"),
      })
      .optional()
      .describe("present when the action has editable_params (edit before approve)"),
  }),
  approvals: z.array(Approval),
  escalated: z.object({ by: z.string(), at: z.string(), prior_approvals: z.array(Approval) }).nullable(),
  decision: z
    .object({
      by: z.string().describe("slack:U…, link:<recipient>, key:<name> or system"),
      at: z.string(),
      outcome: z.enum(["approved", "denied", "expired", "cancelled", "acknowledged", "escalated"]),
      reason: z.string().optional(),
      answer: z.enum(VERIFY_ANSWERS).optional().describe("a verification prompt's answer"),
      break_glass: z.literal(true).optional().describe("approved through break-glass; reason says why"),
    })
    .nullable(),
  dispatch: z.object({
    attempts: z.number(),
    last_error: z.string().nullable(),
    dispatched_at: z.string().nullable(),
    refusal: z
      .object({
        http_status: z.number(),
        reason: z
          .string()
          .nullable()
          .describe("the runner's answer body as it sent it (not signoff's words), cut to 300 characters"),
      })
      .optional()
      .describe("present when the runner refused the dispatch (a 4xx answer)"),
  }),
  result: z.object({ status: z.enum(["succeeded", "failed"]), output: z.string(), at: z.string() }).nullable(),
  break_glass: z
    .object({
      by: z.string(),
      person: z.string(),
      at: z.string(),
      reason: z.string(),
      freeze: z.string().nullable(),
      reviews: z.array(z.object({ by: z.string(), person: z.string(), at: z.string(), justified: z.boolean() })),
    })
    .optional()
    .describe("present when approved through break-glass: who, why, and the approvers' review of it"),
  edits: z
    .array(
      z.object({
        by: z.string().describe("slack:U… who edited"),
        person: z.string(),
        at: z.string(),
        from_plan_sha256: z.string(),
        plan_sha256: z.string(),
        changes: z
          .array(z.object({ param: z.string(), from: z.unknown(), to: z.unknown() }))
          .describe("null: left out"),
        voided_approvals: z.array(Approval).describe("approvals of the plan before: recorded, no longer counted"),
      }),
    )
    .optional()
    .describe("present once an approver edited the params (edit before approve); action.params is the edited plan"),
  group_key: z.string().optional().describe("the group_key it was created with: it shares a Slack card with its group"),
});

export const IssuedLinkResponse = z.object({
  recipient: z.string(),
  choice: z.enum(VERIFY_ANSWERS),
  url: z.string().describe("PUBLIC_URL/l/<signed token>: opens a confirmation page; only its button decides"),
});

/**
 * POST /v1/proposals answers the proposal plus, for a verification prompt whose action enables links, its signed links
 * (never shown again by GET). An approval's links are never in any answer: signoff delivers them itself (SPEC 12).
 */
export const CreatedProposalResponse = ProposalResponse.extend({
  links: z
    .array(IssuedLinkResponse)
    .optional()
    .describe(
      "verification prompts (kind verify) whose action enables links only: the recipient's three links, for the " +
        "proposer to deliver to that person alone (SMS, e-mail); they answer by possession and never dispatch. " +
        "Credentials: GET never shows them. Approval links are never returned: signoff mails them to their " +
        "recipients and posts the Teams card's itself, and deciding with one needs the recipient's sign-in",
    ),
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
  head_sig: z
    .string()
    .nullable()
    .describe("on the last event of each flush: `<key id>:<base64 Ed25519 signature>` of it as its chain's head"),
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

/** GET /v1/keys: every Ed25519 public key that signs `v1a` webhooks, events and runner dispatches apart. */
export const PublicKeys = z.object({
  keys: z.array(
    z.object({
      kid: z.string().describe("ed25519:<first 16 hex digits of the SHA-256 of the public key>"),
      use: z.enum(["events", "runner"]).describe("events: outcome events to proposers; runner: dispatches"),
      alg: z.literal("Ed25519"),
      public_key: z.string().describe("whpk_<base64 of the 32-byte public key>, as Standard Webhooks writes it"),
      jwk: z.object({ kty: z.literal("OKP"), crv: z.literal("Ed25519"), x: z.string(), kid: z.string() }),
    }),
  ),
});
export type PublicKeys = z.infer<typeof PublicKeys>;

/** GET /v1/actions: what the calling key may propose, and how each is decided — counts, never who. */
export const ActionsResponse = z.object({
  actions: z.array(
    z.object({
      type: z.string(),
      kind: z.enum(PROPOSAL_KINDS).describe('approval, or verify for a verification prompt ("was this you?")'),
      params_schema: z
        .record(z.string(), z.unknown())
        .nullable()
        .describe("the JSON Schema action.params must satisfy; null: any JSON object of at most 4 KiB"),
      ttl_seconds: z.number().int().describe("how long a proposal waits for a decision unless it asks otherwise"),
      max_ttl_seconds: z.number().int().describe("the largest ttl_seconds a proposal may ask for"),
      requested_by: z
        .enum(["required", "listed", "any"])
        .describe("required: must name one of the action's requesters; listed: optional, but only those; any"),
      rule: z.object({
        required_approvals: z.number().int().describe("distinct people who must approve"),
        approvers: z
          .object({ users: z.number().int(), groups: z.number().int(), links: z.number().int() })
          .describe("how many users, Slack user groups and signed-link recipients the policy names; never who"),
        allow_self_approval: z.boolean().describe("whether the requester may approve their own proposal"),
        requester_only: z.boolean().describe("only the requester decides, in a Slack DM"),
        confirm: z.boolean().describe("Approve asks the approver to confirm first"),
        escalation: z
          .object({ required_approvals: z.number().int(), extend_ttl_seconds: z.number().int() })
          .nullable()
          .describe("null: no Escalate button"),
      }),
    }),
  ),
});
export type ActionsResponse = z.infer<typeof ActionsResponse>;

// ---- POST /v1/adapters/alertmanager ----

const labelSet = z.record(z.string(), z.string());
/** RFC 3339 as Alertmanager writes it (nanoseconds, any offset); it becomes part of an Idempotency-Key, so ASCII. */
const alertTime = z.string().regex(/^\d{4}-\d\d-\d\dT[\x21-\x7e]{1,60}$/, "must be an RFC 3339 date-time");

/**
 * Alertmanager's webhook payload, version 4. Fields Alertmanager may add later are ignored (it is its payload, not
 * ours); the ones read are checked.
 */
export const AlertmanagerPayload = z.object({
  version: z.literal("4", { error: 'must be "4" (Alertmanager\'s webhook payload version)' }),
  groupKey: z.string().max(4096),
  truncatedAlerts: z.int().min(0).default(0),
  status: z.enum(["firing", "resolved"]),
  receiver: z.string().max(1000),
  groupLabels: labelSet.default({}),
  commonLabels: labelSet.default({}),
  commonAnnotations: labelSet.default({}),
  externalURL: z.string().max(2048).default(""),
  alerts: z.array(
    z.object({
      status: z.enum(["firing", "resolved"]),
      labels: labelSet,
      annotations: labelSet.default({}),
      startsAt: alertTime,
      endsAt: z.string().max(64).default(""),
      generatorURL: z.string().max(2048).default(""),
      fingerprint: z.string().regex(/^[0-9A-Za-z]{1,64}$/, "must be Alertmanager's alert fingerprint (hex)"),
    }),
  ),
});
export type AlertmanagerPayload = z.infer<typeof AlertmanagerPayload>;

export const ALERT_OUTCOMES = ["created", "existing", "cancelled", "skipped", "refused"] as const;

/** What the receiver did with each alert of the group, in the payload's order. */
export const AlertmanagerResponse = z.object({
  counts: z.record(z.enum(ALERT_OUTCOMES), z.number().int()),
  alerts: z.array(
    z.object({
      fingerprint: z.string(),
      alertname: z.string().nullable(),
      status: z.enum(["firing", "resolved"]),
      outcome: z
        .enum(ALERT_OUTCOMES)
        .describe(
          "created: a new proposal; existing: its proposal was already made (a re-sent group); cancelled: resolved " +
            "while pending; skipped: no route, or nothing to cancel; refused: the route could not make a valid proposal",
        ),
      route: z.number().int().nullable().describe("index of the route in adapters.alertmanager.routes"),
      proposal_id: z.string().nullable(),
      proposal_status: z.string().nullable(),
      reason: z.string().nullable(),
      details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    }),
  ),
});
export type AlertmanagerResponse = z.infer<typeof AlertmanagerResponse>;
