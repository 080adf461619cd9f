// Building a new proposal from a validated request: plan hash, deadline, frozen rule. Pure.
import { createHash } from "node:crypto";
import type { CreateProposalBody } from "../api/schemas.ts";
import { canonicalJson } from "../lib/jcs.ts";
import type { DecisionRule, Proposal, ProposalKind } from "./types.ts";

/** SPEC 2: SHA-256 of the JCS form of {action, summary, reason, blast_radius, rollback}. */
export function planSha256(
  body: Pick<CreateProposalBody, "action" | "summary" | "reason" | "blast_radius" | "rollback">,
): string {
  const { action, summary, reason } = body;
  // A verification prompt may leave these out; they are hashed as the empty strings it stores.
  const blast_radius = body.blast_radius ?? "";
  const rollback = body.rollback ?? "";
  return createHash("sha256").update(canonicalJson({ action, summary, reason, blast_radius, rollback })).digest("hex");
}

/** SHA-256 of the request's canonical JSON: the same body in another key order is the same request. */
export function requestSha256(body: unknown): string {
  return createHash("sha256").update(canonicalJson(body)).digest("hex");
}

export function newProposal(input: {
  id: string;
  body: CreateProposalBody;
  keyName: string;
  rule: DecisionRule;
  ttlSeconds: number;
  now: number;
  /** The action's kind from the policy (the body's `kind`, when given, was checked against it). */
  kind?: ProposalKind;
  /** The action's Teams webhook, frozen with the rule. */
  teamsWebhook?: string | null;
}): Proposal {
  const { body } = input;
  return {
    id: input.id,
    kind: input.kind ?? "approval",
    status: "pending",
    action: { type: body.action.type, params: body.action.params },
    summary: body.summary,
    reason: body.reason,
    blast_radius: body.blast_radius ?? "",
    rollback: body.rollback ?? "",
    requested_by: body.requested_by ?? null,
    recipient: body.recipient ?? null,
    created_by: input.keyName,
    created_at: new Date(input.now).toISOString(),
    expires_at: new Date(input.now + input.ttlSeconds * 1000).toISOString(),
    plan_sha256: planSha256(body),
    callback_url: body.callback_url ?? null,
    metadata: body.metadata ?? null,
    rule: input.rule,
    approvals: [],
    escalated: null,
    decision: null,
    dispatch: { attempts: 0, last_error: null, dispatched_at: null },
    result: null,
    slack: { messages: [] },
    teams: input.teamsWebhook ? { webhook: input.teamsWebhook, card_posted: false, announced: null } : null,
  };
}
