// Building a new proposal from a validated draft: plan hash, deadline, frozen rule. Pure.
import { createHash } from "node:crypto";
import { type DecisionRule, isMailRecipient } from "../config/policy.ts";
import { canonicalJson } from "../lib/jcs.ts";
import type { Proposal, ProposalKind } from "./types.ts";

/**
 * What the proposer asked for, already validated: the domain's side of a create request (the API's body is one).
 * Left out, blast_radius and rollback (verification prompts only) become "", the other optional fields null.
 */
export interface ProposalDraft {
  action: { type: string; params: Record<string, unknown> };
  summary: string;
  reason: string;
  blast_radius?: string;
  rollback?: string;
  requested_by?: string;
  recipient?: string;
  callback_url?: string;
  metadata?: Record<string, unknown>;
  /** Shares one Slack card with the proposer's other pending proposals of this action and key (docs/grouping.md). */
  group_key?: string;
}

/** SPEC 2: SHA-256 of the JCS form of {action, summary, reason, blast_radius, rollback}. */
export function planSha256(
  draft: Pick<ProposalDraft, "action" | "summary" | "reason" | "blast_radius" | "rollback">,
): string {
  const { action, summary, reason } = draft;
  // A verification prompt may leave these out; they are hashed as the empty strings it stores.
  const blast_radius = draft.blast_radius ?? "";
  const rollback = draft.rollback ?? "";
  return createHash("sha256").update(canonicalJson({ action, summary, reason, blast_radius, rollback })).digest("hex");
}

/** SHA-256 of the request's canonical JSON: the same body in another key order is the same request. */
export function requestSha256(body: unknown): string {
  return createHash("sha256").update(canonicalJson(body)).digest("hex");
}

export function newProposal(input: {
  id: string;
  draft: ProposalDraft;
  keyName: string;
  rule: DecisionRule;
  ttlSeconds: number;
  now: number;
  /** The action's kind from the policy (a `kind` the proposer gave was checked against it). */
  kind?: ProposalKind;
  /** The action's Teams webhook, frozen with the rule (approvals only: see `teams` below). */
  teamsWebhook?: string | null;
}): Proposal {
  const { draft } = input;
  const kind = input.kind ?? "approval";
  // A verification prompt's links decide by possession: never into a shared Teams channel, whatever the caller passed.
  const teamsWebhook = kind === "approval" ? (input.teamsWebhook ?? null) : null;
  // signoff mails approval links to e-mail recipients itself (SPEC 12); the proposer never sees them. Not in a change
  // freeze: no link approval counts there (lifecycle.ts mailRecipients).
  const mailed =
    kind === "approval" && !input.rule.freeze && (input.rule.links?.recipients ?? []).some(isMailRecipient);
  return {
    id: input.id,
    kind,
    status: "pending",
    action: { type: draft.action.type, params: draft.action.params },
    summary: draft.summary,
    reason: draft.reason,
    blast_radius: draft.blast_radius ?? "",
    rollback: draft.rollback ?? "",
    requested_by: draft.requested_by ?? null,
    recipient: draft.recipient ?? null,
    created_by: input.keyName,
    created_at: new Date(input.now).toISOString(),
    expires_at: new Date(input.now + input.ttlSeconds * 1000).toISOString(),
    plan_sha256: planSha256(draft),
    callback_url: draft.callback_url ?? null,
    metadata: draft.metadata ?? null,
    rule: input.rule,
    approvals: [],
    escalated: null,
    decision: null,
    dispatch: { attempts: 0, last_error: null, dispatched_at: null },
    result: null,
    slack: { messages: [] },
    teams: teamsWebhook ? { webhook: teamsWebhook, card_posted: false, announced: null } : null,
    mail: mailed ? { done: {} } : null,
    ...(draft.group_key === undefined ? {} : { group_key: draft.group_key }),
  };
}
