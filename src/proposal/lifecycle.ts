// The proposal state machine and who may decide (SPEC 2, 3, 5): pure functions, no I/O.
// Each returns either a refusal or the next proposal plus the audit events that record it.
import type { Proposal, Status } from "./types.ts";
import { TERMINAL_STATUSES } from "./types.ts";

/** An audit event before the Durable Object numbers and seals it. */
export interface EventDraft {
  type: string;
  actor: string;
  details: Record<string, unknown>;
}

export type Transition =
  | { ok: true; proposal: Proposal; events: EventDraft[] }
  | { ok: false; code: RefusalCode; message: string; events: EventDraft[] };

export type RefusalCode =
  | "not_pending"
  | "expired"
  | "not_an_approver"
  | "self_approval"
  | "requester_only"
  | "already_approved"
  | "already_escalated"
  | "no_escalation"
  | "not_creator";

export type ClickKind = "approve" | "deny" | "escalate";

export interface Click {
  kind: ClickKind;
  /** Slack user id of the person who clicked. */
  user: string;
  /** The user groups (S…) among the proposal's approvers that the user belongs to. */
  memberOf: readonly string[];
  /** Deny's optional reason. */
  reason?: string;
  /** Where the click came from, for the audit trail ("slack"). */
  via: string;
}

const slackActor = (user: string) => `slack:${user}`;

/** The approvers whose say counts now: the escalation approvers once escalated. */
export function currentApprovers(p: Proposal): string[] {
  return p.escalated && p.rule.escalation ? p.rule.escalation.approvers : p.rule.approvers;
}

/**
 * Approvals still needed in total: the policy's M while with the first approvers; after
 * escalation one escalation approver decides (their call is the point of escalating).
 */
export function requiredApprovals(p: Proposal): number {
  return p.escalated ? 1 : p.rule.required_approvals;
}

/** Every user-group id a decision on this proposal could depend on. */
export function groupsOf(p: Proposal): string[] {
  const ids = [...p.rule.approvers, ...(p.rule.escalation?.approvers ?? [])];
  return [...new Set(ids.filter((id) => id.startsWith("S")))];
}

/** Whether `user` is one of the people who may decide right now, and if not, why. */
export function mayDecide(
  p: Proposal,
  user: string,
  memberOf: readonly string[],
  kind: ClickKind,
): { ok: true } | { ok: false; code: RefusalCode; message: string } {
  if (p.rule.requester_only) {
    if (user !== p.requested_by) {
      return { ok: false, code: "requester_only", message: `Only <@${p.requested_by}> can decide on this proposal.` };
    }
    return { ok: true };
  }
  const approvers = currentApprovers(p);
  const listed = approvers.includes(user) || memberOf.some((group) => approvers.includes(group));
  if (!listed) {
    const whom = p.escalated ? "the escalation approvers" : "the approvers";
    return { ok: false, code: "not_an_approver", message: `You are not among ${whom} for ${p.action.type}.` };
  }
  if (kind === "approve" && user === p.requested_by && !p.rule.allow_self_approval) {
    return {
      ok: false,
      code: "self_approval",
      message: "You requested this action, so someone else has to approve it (four-eyes rule).",
    };
  }
  return { ok: true };
}

/** Why a click on a proposal that is no longer pending changes nothing, in words for the clicker. */
export function notPendingMessage(p: Proposal): string {
  const d = p.decision;
  switch (p.status) {
    case "expired":
      return "This proposal expired; nothing ran.";
    case "cancelled":
      return `This proposal was cancelled by ${d?.by ?? "its proposer"}; nothing ran.`;
    case "denied":
      return `Already denied by ${who(d?.by)}.`;
    default:
      return `Already approved by ${who(d?.by)}; nothing more to decide.`;
  }
}

function who(actor: string | undefined): string {
  if (!actor) return "someone";
  return actor.startsWith("slack:") ? `<@${actor.slice(6)}>` : actor;
}

/** Applies a Slack click (approve, deny, escalate) at time `now` (ms). */
export function applyClick(p: Proposal, click: Click, now: number): Transition {
  const actor = slackActor(click.user);
  const at = new Date(now).toISOString();
  const refuse = (code: RefusalCode, message: string, extraEvents: EventDraft[] = []): Transition => ({
    ok: false,
    code,
    message,
    events: [
      ...extraEvents,
      { type: "click.refused", actor, details: { action: click.kind, code, status: p.status, via: click.via } },
    ],
  });

  if (p.status !== "pending") return refuse("not_pending", notPendingMessage(p));
  if (now >= Date.parse(p.expires_at)) {
    // The deadline passed but the alarm has not fired yet: the click is late, and the
    // expiry it reveals is applied by the caller (applyExpiry) in the same step.
    return refuse("expired", "This proposal expired; nothing ran.");
  }
  const allowed = mayDecide(p, click.user, click.memberOf, click.kind);
  if (!allowed.ok) return refuse(allowed.code, allowed.message);

  if (click.kind === "deny") {
    const reason = click.reason?.trim() || undefined;
    const next: Proposal = {
      ...p,
      status: "denied",
      decision: { by: actor, at, outcome: "denied", ...(reason ? { reason } : {}) },
    };
    return { ok: true, proposal: next, events: [{ type: "proposal.denied", actor, details: { reason: reason ?? null } }] };
  }

  if (click.kind === "escalate") {
    const escalation = p.rule.escalation;
    if (!escalation) return refuse("no_escalation", "This action has no escalation path.");
    if (p.escalated) return refuse("already_escalated", "Already escalated.");
    const expires = new Date(Date.parse(p.expires_at) + escalation.extend_ttl_seconds * 1000).toISOString();
    const next: Proposal = {
      ...p,
      escalated: { by: actor, at, prior_approvals: p.approvals },
      approvals: [],
      expires_at: expires,
    };
    return {
      ok: true,
      proposal: next,
      events: [
        {
          type: "proposal.escalated",
          actor,
          details: { approvers: escalation.approvers, channel: escalation.channel, expires_at: expires },
        },
      ],
    };
  }

  // approve
  if (p.approvals.some((a) => a.user === click.user)) {
    const left = requiredApprovals(p) - p.approvals.length;
    return refuse("already_approved", `You already approved; waiting for ${left} more approval${left === 1 ? "" : "s"}.`);
  }
  const approvals = [...p.approvals, { user: click.user, at }];
  const events: EventDraft[] = [
    {
      type: "approval.recorded",
      actor,
      details: { plan_sha256: p.plan_sha256, count: approvals.length, required: requiredApprovals(p) },
    },
  ];
  if (approvals.length < requiredApprovals(p)) {
    return { ok: true, proposal: { ...p, approvals }, events };
  }
  events.push({
    type: "proposal.approved",
    actor,
    details: { plan_sha256: p.plan_sha256, approvers: approvals.map((a) => a.user) },
  });
  return {
    ok: true,
    proposal: { ...p, approvals, status: "approved", decision: { by: actor, at, outcome: "approved" } },
    events,
  };
}

/** Expires a pending proposal whose deadline has passed; anything else is left alone. */
export function applyExpiry(p: Proposal, now: number): Transition {
  if (p.status !== "pending" || now < Date.parse(p.expires_at)) {
    return { ok: false, code: "not_pending", message: "nothing to expire", events: [] };
  }
  const at = new Date(now).toISOString();
  return {
    ok: true,
    proposal: { ...p, status: "expired", decision: { by: "system", at, outcome: "expired" } },
    events: [{ type: "proposal.expired", actor: "system", details: { deadline: p.expires_at, lateness_ms: now - Date.parse(p.expires_at) } }],
  };
}

/** Cancels a pending proposal at the request of the key that created it. */
export function applyCancel(p: Proposal, keyName: string, now: number): Transition {
  const actor = `key:${keyName}`;
  if (keyName !== p.created_by) {
    return {
      ok: false,
      code: "not_creator",
      message: "only the key that created a proposal may cancel it",
      events: [{ type: "cancel.refused", actor, details: { code: "not_creator", status: p.status } }],
    };
  }
  if (p.status !== "pending" || now >= Date.parse(p.expires_at)) {
    const status: Status = p.status === "pending" ? "expired" : p.status;
    return {
      ok: false,
      code: "not_pending",
      message: `proposal is ${status}, only a pending proposal can be cancelled`,
      events: [{ type: "cancel.refused", actor, details: { code: "not_pending", status } }],
    };
  }
  const at = new Date(now).toISOString();
  return {
    ok: true,
    proposal: { ...p, status: "cancelled", decision: { by: actor, at, outcome: "cancelled" } },
    events: [{ type: "proposal.cancelled", actor, details: {} }],
  };
}

export function isTerminal(status: Status): boolean {
  return TERMINAL_STATUSES.has(status);
}
