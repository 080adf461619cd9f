// The proposal state machine and who may decide (SPEC 2, 3, 5, 6, 12): pure functions, no I/O.
// Each returns either a refusal or the next proposal plus the audit events that record it;
// nothing else in the code base builds a new status.

import type { Validator } from "@cfworker/json-schema";
import { compileParamsSchema, schemaErrors } from "../config/json-schema.ts";
import { DEFAULT_VERIFY_LABELS, isMailRecipient } from "../config/policy.ts";
import { matchRiskRule, type RiskRule } from "../config/risk-rules.ts";
import type { RunnerAnswer } from "../dispatch/runner-answer.ts";
import type { ErrorDetail } from "../errors.ts";
import { canonicalJson } from "../lib/jcs.ts";
import { planProblems } from "../slack/plan.ts";
import { planSha256 } from "./create.ts";
import type { Approval, Edit, LinkChoice, ParamChange, Proposal, Status, VerifyAnswer } from "./types.ts";
import { TERMINAL_STATUSES, VERIFY_ANSWERS } from "./types.ts";

/** An audit event before the Durable Object numbers and seals it. */
export interface EventDraft {
  type: string;
  actor: string;
  details: Record<string, unknown>;
}

export type Transition =
  | { ok: true; proposal: Proposal; events: EventDraft[] }
  | { ok: false; code: RefusalCode; message: string; events: EventDraft[]; details?: ErrorDetail[] };

/** A refusal: the proposal stays as it is, and only the events that record the refusal are kept. */
export type Refused = Extract<Transition, { ok: false }>;

export type RefusalCode =
  | "not_pending"
  | "expired"
  | "not_an_approver"
  | "self_approval"
  // whoever escalated a proposal cannot count toward the escalated decision
  | "escalated_by_you"
  // a Slack guest, or someone from another workspace (a Slack Connect channel): never counts
  | "not_a_member"
  // an approval link opened without a verified identity, or by someone other than its recipient
  | "identity_required"
  | "wrong_identity"
  | "requester_only"
  | "already_approved"
  | "already_escalated"
  | "no_escalation"
  | "not_creator"
  // a button or link of the other kind (approve on a verification prompt, "yes" on an approval)
  | "wrong_kind"
  // signed links: the recipient may not decide this proposal, or links are not enabled for it
  | "not_a_recipient"
  | "links_disabled"
  // signed links: not a link this proposal issued, or one that already decided
  | "unknown_link"
  | "already_used"
  // runner results and dispatch answers: nothing awaits one, or this one was delivered before
  | "wrong_state"
  | "replayed"
  // a Home-tab button drawn when the proposal stood otherwise (another approval, an escalation): look again first
  | "changed"
  // created during a change freeze: only break-glass approves it
  | "frozen"
  // break-glass: the action has none, the clicker is not one of its approvers, no reason was given
  | "no_break_glass"
  | "not_a_break_glass_approver"
  | "reason_required"
  // the break-glass review: not a normal approver, answered already, or no break-glass to review
  | "not_a_reviewer"
  | "already_reviewed"
  // edit before approve: the action has no editable params (or a freeze / requester_only forbids edits), a param
  // outside them, the requester editing, nothing changed, edited params that fail a schema, another risk rule
  | "not_editable"
  | "not_an_editable_param"
  | "self_edit"
  | "no_change"
  | "invalid_params"
  | "rule_changed"
  // four-eyes over edits: an editor's approval cannot be the one that completes the edited plan's approvals
  | "edited_by_you";

/** Slack buttons: approve/deny/escalate on approvals, the three answers on verification prompts. */
export type ClickKind = "approve" | "deny" | "escalate" | VerifyAnswer;

export function isVerifyAnswer(kind: string): kind is VerifyAnswer {
  return (VERIFY_ANSWERS as readonly string[]).includes(kind);
}

/**
 * Where a Slack clicker stands in the workspace: a full member; a guest (`is_restricted` / `is_ultra_restricted`);
 * someone from another workspace (a Slack Connect channel); or unknown because Slack could not be asked just now.
 * Only members decide.
 */
export type Standing = "member" | "guest" | "other_workspace" | "unknown";

export interface Click {
  kind: ClickKind;
  /** Slack user id of the person who clicked. */
  user: string;
  standing: Standing;
  /** The user groups (S…) among the proposal's approvers that the user belongs to. */
  memberOf: readonly string[];
  /** Deny's optional reason. */
  reason?: string;
  /** Where the click came from, for the audit trail ("slack", or "slack_home" for the Home tab). */
  via: string;
  /** A Home-tab click: the proposal's drawnState() when its view was drawn; the click counts only if it still is. */
  drawn?: string | undefined;
  /**
   * A card click: the plan its buttons were drawn on (its plan hash; null or absent: as created, before any edit). An
   * Approve drawn on another plan than the one in force counts nothing (`changed`): nobody approves an edit unseen. A
   * Home-tab click (`drawn`) is checked by its drawn state instead, which counts the edits.
   */
  plan?: string | null | undefined;
}

/**
 * What a Home-tab button was drawn against: status, approvals so far and escalation. A click whose view showed the
 * proposal otherwise is refused (`changed`), so nobody approves a state they did not see.
 */
export function drawnState(p: Proposal): string {
  // An edit changes the plan: a view drawn before it is stale even when the counts match again.
  const edits = p.edits?.length ? `.${p.edits.length}` : "";
  return `${p.status}.${p.approvals.length}.${p.escalated ? "e" : "n"}${edits}`;
}

/**
 * Whether a view drawn on `plan` (the whole plan hash, or null for the plan as created) shows the plan in force. The
 * whole hash: a prefix could be matched by an editor who searched for params whose plan hash begins the same way.
 */
function drawnOnPlan(p: Proposal, plan: string | null): boolean {
  return plan === null ? !p.edits?.length : plan === p.plan_sha256;
}

const EDITED_SINCE_DRAWN = "The params were edited since this card was drawn: look at the plan as it is now first.";

const CHANGED_MESSAGE =
  "This proposal changed since your Home tab was drawn; it has been redrawn as it stands now. Look again before you decide.";

const slackActor = (user: string) => `slack:${user}`;
/** The audit actor, and the approvals[].user, of a decision made through a signed link. */
export const linkActor = (recipient: string) => `link:${recipient}`;

/** The labels a verification prompt shows for its answers. */
export function verifyLabels(p: Proposal) {
  return p.rule.verify_labels ?? DEFAULT_VERIFY_LABELS;
}

/** The person behind an identity (`U…`, an e-mail, `slack:U…`, `link:…`): the `people` directory's name, else itself. */
export function personOf(p: Proposal, identity: string): string {
  const id = identity.replace(/^(?:slack|link):/, "");
  return p.rule.people?.[id] ?? id;
}

function approvalPerson(p: Proposal, approval: Approval): string {
  return approval.person ?? personOf(p, approval.user);
}

/** The distinct people whose approvals count so far. */
export function approvingPeople(p: Proposal): string[] {
  return [...new Set(p.approvals.map((a) => approvalPerson(p, a)))];
}

/** The approvers whose say counts now: the escalation approvers once escalated. */
export function currentApprovers(p: Proposal): string[] {
  return p.escalated && p.rule.escalation ? p.rule.escalation.approvers : p.rule.approvers;
}

/**
 * A risk rule's narrowed approvers, or null. They apply before and after escalation alike (rules only tighten): once
 * escalated, only people listed both in the escalation's approvers and here decide.
 */
export function narrowedApprovers(p: Proposal): string[] | null {
  return p.rule.risk?.approvers ?? null;
}

/** Whether `user` is in `list`, directly or through one of the groups it belongs to. */
function listedIn(list: readonly string[], user: string, memberOf: readonly string[]): boolean {
  return list.includes(user) || memberOf.some((group) => list.includes(group));
}

/**
 * Approvals needed in total: the policy's M while with the first approvers; once escalated, the escalation's own
 * `required_approvals` (default 1), counted among people other than whoever escalated and the requester — and never
 * fewer than a matched risk rule's own `required_approvals` (rules only tighten, escalated or not).
 */
export function requiredApprovals(p: Proposal): number {
  if (!p.escalated) return p.rule.required_approvals;
  return Math.max(p.rule.escalation?.required_approvals ?? 1, p.rule.risk?.required_approvals ?? 0);
}

type Verdict = { ok: true } | { ok: false; code: RefusalCode; message: string };

/**
 * Created in a change freeze: no approval counts, on any channel (Slack, Home tab, links), escalated or not;
 * break-glass is the one way. Null for any other proposal.
 */
export function frozenRefusal(p: Proposal): Extract<Verdict, { ok: false }> | null {
  if (!p.rule.freeze || p.kind === "verify") return null;
  return {
    ok: false,
    code: "frozen",
    message:
      `This proposal was created during the change freeze "${p.rule.freeze.name}" ` +
      `(until ${p.rule.freeze.ends_at}): only break-glass can approve it.`,
  };
}

/**
 * Whether `person`'s approval may count, whatever channel it came through (SPEC 12): never the requester's own
 * (four-eyes, unless the policy allows self-approval before escalation), never twice for one person, and once
 * escalated never the escalator's nor the requester's. requester_only actions are the requester's call alone.
 */
export function mayCountApproval(p: Proposal, person: string): Verdict {
  if (p.kind === "verify") return { ok: true };
  const frozen = frozenRefusal(p);
  if (frozen) return frozen;
  const requester = p.requested_by === null ? null : personOf(p, p.requested_by);
  // Before escalation a requester_only action is the requester's call alone, on whatever channel an approval comes
  // (the policy allows no links there, and this holds even if it did); once escalated it is the escalation's.
  if (p.rule.requester_only && !p.escalated) {
    if (person === requester) return { ok: true };
    const whom = p.requested_by === null ? "its requester" : `<@${p.requested_by}>`;
    return { ok: false, code: "requester_only", message: `Only ${whom} can decide on this proposal.` };
  }
  if (p.escalated) {
    // An automatic escalation is nobody's: it excludes no one (the requester stays excluded below).
    if (!escalatedAutomatically(p) && personOf(p, p.escalated.by) === person) {
      return {
        ok: false,
        code: "escalated_by_you",
        message: "You escalated this proposal, so the escalation approvers other than you decide.",
      };
    }
    if (person === requester) {
      return {
        ok: false,
        code: "self_approval",
        message: "You requested this action: once escalated, people other than you decide.",
      };
    }
  } else if (person === requester && !p.rule.allow_self_approval) {
    return {
      ok: false,
      code: "self_approval",
      message: "You requested this action, so someone else has to approve it (four-eyes rule).",
    };
  }
  if (p.approvals.some((a) => approvalPerson(p, a) === person)) {
    const left = requiredApprovals(p) - approvingPeople(p).length;
    return {
      ok: false,
      code: "already_approved",
      message: `You already approved; waiting for ${left} more approval${left === 1 ? "" : "s"}.`,
    };
  }
  // Four-eyes over edits: the edited plan needs at least one approval from someone who did not edit it.
  const editors = editorsOf(p);
  if (editors.includes(person)) {
    const approving = approvingPeople(p);
    const completes = approving.length + 1 >= requiredApprovals(p);
    if (completes && approving.every((other) => editors.includes(other))) {
      return {
        ok: false,
        code: "edited_by_you",
        message:
          "You edited this proposal, so your approval cannot complete it: someone who did not edit it must approve too.",
      };
    }
  }
  return { ok: true };
}

/** The people who edited this proposal's params (edit before approve), in the order of their first edit. */
export function editorsOf(p: Proposal): string[] {
  return [...new Set((p.edits ?? []).map((e) => e.person))];
}

/** Who may decide a proposal now, as its frozen rule says: what the card and a refused clicker are told (issue 13). */
export interface Deciders {
  /** Slack users (U…, W…) and user groups (S…) who may decide in Slack. */
  approvers: string[];
  /** Signed-link recipients (e-mail addresses or opaque ids) who may decide by link. */
  linkRecipients: string[];
  /** Distinct people needed in all (approvals already given included). */
  required: number;
  /** Only the requester decides (requester_only, not escalated): `approvers` is just them. */
  requesterOnly: boolean;
  /** The requester, when listed approvers would otherwise count them (four-eyes); else null. */
  requester: string | null;
  /** Whoever escalated (an audit actor, `slack:U…`), who no longer counts; null before escalation. */
  escalator: string | null;
}

export function deciders(p: Proposal): Deciders {
  if (p.rule.requester_only && !p.escalated) {
    const approvers = p.requested_by === null ? [] : [p.requested_by];
    return { approvers, linkRecipients: [], required: 1, requesterOnly: true, requester: null, escalator: null };
  }
  if (p.escalated) {
    return {
      approvers: escalatedApprovers(p),
      // Links decide only before escalation (mayDecideByLink).
      linkRecipients: [],
      required: requiredApprovals(p),
      requesterOnly: false,
      requester: p.requested_by,
      escalator: escalatedAutomatically(p) ? null : p.escalated.by,
    };
  }
  return {
    // A risk rule that narrows shows its own list: only those of them among the action's approvers decide.
    approvers: narrowedApprovers(p) ?? p.rule.approvers,
    linkRecipients: p.rule.links?.recipients ?? [],
    required: requiredApprovals(p),
    requesterOnly: false,
    requester: p.rule.allow_self_approval ? null : p.requested_by,
    escalator: null,
  };
}

/**
 * Whom an escalated proposal names as its deciders: the escalation approvers, or, when a risk rule narrowed it, those
 * of the rule's approvers who may also be among the escalation's (listed in both, or where either side is a group).
 */
function escalatedApprovers(p: Proposal): string[] {
  const list = p.rule.escalation?.approvers ?? [];
  const narrowed = narrowedApprovers(p);
  if (narrowed === null) return list;
  const anyGroup = list.some((id) => id.startsWith("S"));
  return narrowed.filter((id) => list.includes(id) || anyGroup || id.startsWith("S"));
}

/**
 * Who a reminder names (issue 16): the Slack users and groups who may decide now and have not. A user whose person
 * already approved, the requester (under four-eyes) and whoever escalated are left out; a group is named as a whole,
 * since Slack resolves its members. Empty once nothing is left to decide.
 */
export function stillToDecide(p: Proposal): string[] {
  if (p.status !== "pending" || p.kind === "verify")
    return p.status === "pending" && p.requested_by ? [p.requested_by] : [];
  // Created in a change freeze: only break-glass approves it, so those are the ones to remind (never the requester).
  if (p.rule.freeze) {
    const requester = p.requested_by === null ? null : personOf(p, p.requested_by);
    return (p.rule.break_glass?.approvers ?? []).filter((id) => id.startsWith("S") || personOf(p, id) !== requester);
  }
  const d = deciders(p);
  const approved = new Set(approvingPeople(p));
  const excluded = [d.requester, d.escalator].flatMap((id) => (id === null ? [] : [personOf(p, id)]));
  return d.approvers.filter((id) => {
    if (id.startsWith("S")) return true;
    const person = personOf(p, id);
    return !approved.has(person) && (d.requesterOnly || !excluded.includes(person));
  });
}

/** Every user-group id a decision on this proposal could depend on. */
export function groupsOf(p: Proposal): string[] {
  const ids = [
    ...p.rule.approvers,
    ...(p.rule.risk?.approvers ?? []),
    ...(p.rule.escalation?.approvers ?? []),
    ...(p.rule.break_glass?.approvers ?? []),
  ];
  return [...new Set(ids.filter((id) => id.startsWith("S")))];
}

/** Why someone of this standing decides nothing (null for a full member): a refused click, an empty Home tab. */
export function standingRefusal(standing: Standing): string | null {
  switch (standing) {
    case "member":
      return null;
    case "guest":
      return "Guest accounts cannot decide signoff proposals.";
    case "other_workspace":
      return "Only members of this signoff's own Slack workspace can decide its proposals.";
    case "unknown":
      return "Your Slack account could not be checked just now; please try again in a minute.";
  }
}

/** Whether `user` is one of the people who may decide right now, and if not, why. */
export function mayDecide(
  p: Proposal,
  user: string,
  memberOf: readonly string[],
  kind: ClickKind | "edit",
  standing: Standing,
): Verdict {
  const why = standingRefusal(standing);
  if (why !== null) return { ok: false, code: "not_a_member", message: why };
  if (p.kind === "verify") {
    if (p.requested_by === null || user !== p.requested_by) {
      const whom = p.requested_by === null ? "the person it is addressed to" : `<@${p.requested_by}>`;
      return { ok: false, code: "requester_only", message: `Only ${whom} can answer this question.` };
    }
    return { ok: true };
  }
  if (p.rule.requester_only && !p.escalated) {
    if (user !== p.requested_by) {
      return { ok: false, code: "requester_only", message: `Only <@${p.requested_by}> can decide on this proposal.` };
    }
    return { ok: true };
  }
  const approvers = currentApprovers(p);
  if (!listedIn(approvers, user, memberOf)) {
    const whom = p.escalated ? "the escalation approvers" : "the approvers";
    return { ok: false, code: "not_an_approver", message: `You are not among ${whom} for ${p.action.type}.` };
  }
  const narrowed = narrowedApprovers(p);
  if (narrowed !== null && !listedIn(narrowed, user, memberOf)) {
    return {
      ok: false,
      code: "not_an_approver",
      message: `A risk rule (${p.rule.risk?.label}) narrowed who decides this proposal, and you are not among them.`,
    };
  }
  if (kind === "approve") return mayCountApproval(p, personOf(p, user));
  return { ok: true };
}

/**
 * What the Home tab offers `user` on a pending approval, by the same checks as the card: `approve` when their
 * approval could count now (mayDecide); for a proposal created in a change freeze, `break_glass` when they may break
 * the glass (mayBreakGlass), since no normal approval counts there; else null, and it is not listed for them (a
 * normal approver of a frozen proposal may still deny it on its card).
 */
export function homeOffer(
  p: Proposal,
  user: string,
  memberOf: readonly string[],
  standing: Standing,
): "approve" | "break_glass" | null {
  if (p.kind !== "approval" || p.status !== "pending") return null;
  if (p.rule.freeze) return mayBreakGlass(p, user, memberOf, standing).ok ? "break_glass" : null;
  return mayDecide(p, user, memberOf, "approve", standing).ok ? "approve" : null;
}

/** A break-glass click (the modal's submission): who, where they stand, their groups among the rule's, and why. */
export interface BreakGlassInput {
  user: string;
  standing: Standing;
  memberOf: readonly string[];
  reason?: string | undefined;
  via: string;
  /** The plan the button or modal was drawn on (its hash; null or absent: as created). Another plan is `changed`. */
  plan?: string | null | undefined;
}

/**
 * Whether `user` may break the glass on `p` (the reason aside): a pending approval whose action has break-glass, a
 * full member listed among its break-glass approvers (directly or through a group), and never the requester — the
 * same person through any identity, whatever allow_self_approval says (SPEC 12). The proposer's key has no way to
 * break glass at all: it exists only as a signed Slack interaction.
 */
export function mayBreakGlass(p: Proposal, user: string, memberOf: readonly string[], standing: Standing): Verdict {
  const why = standingRefusal(standing);
  if (why !== null) return { ok: false, code: "not_a_member", message: why };
  if (p.kind === "verify" || !p.rule.break_glass) {
    return { ok: false, code: "no_break_glass", message: `${p.action.type} has no break-glass.` };
  }
  if (!listedIn(p.rule.break_glass.approvers, user, memberOf)) {
    return {
      ok: false,
      code: "not_a_break_glass_approver",
      message: `You are not among the break-glass approvers for ${p.action.type}.`,
    };
  }
  if (p.requested_by !== null && personOf(p, p.requested_by) === personOf(p, user)) {
    return {
      ok: false,
      code: "self_approval",
      message: "You requested this action: break-glass is never for approving your own request.",
    };
  }
  // Whoever edited the plan never approves it alone, break-glass included (four-eyes over edits).
  if (editorsOf(p).includes(personOf(p, user))) {
    return {
      ok: false,
      code: "edited_by_you",
      message: "You edited this proposal: break-glass is never for approving your own edit.",
    };
  }
  return { ok: true };
}

/**
 * Break-glass: one listed person approves alone, with a reason, in a freeze or not. One person, one vote: an approval
 * they gave before is that same vote, now used for break-glass (it replaces theirs, never adds to it).
 */
export function applyBreakGlass(p: Proposal, input: BreakGlassInput, now: number): Transition {
  const actor = slackActor(input.user);
  const refuse = refuser(p, actor, "break_glass.refused", {}, input.via);
  if (p.status !== "pending") return refuse("not_pending", notPendingMessage(p));
  if (now >= Date.parse(p.expires_at)) return refuse("expired", "This proposal expired; nothing ran.");
  const allowed = mayBreakGlass(p, input.user, input.memberOf, input.standing);
  if (!allowed.ok) return refuse(allowed.code, allowed.message);
  // Break-glass approves alone: never a plan edited since the modal or card was drawn.
  if (!drawnOnPlan(p, input.plan ?? null)) return refuse("changed", EDITED_SINCE_DRAWN);
  const reason = input.reason?.trim() ?? "";
  if (reason === "") return refuse("reason_required", "Break-glass needs a reason: say why this cannot wait.");
  const at = new Date(now).toISOString();
  const person = personOf(p, input.user);
  const replaced = p.approvals.some((a) => approvalPerson(p, a) === person);
  const approvals: Approval[] = [
    ...p.approvals.filter((a) => approvalPerson(p, a) !== person),
    { user: input.user, person, at, break_glass: true },
  ];
  const freeze = p.rule.freeze?.name ?? null;
  const next: Proposal = {
    ...p,
    approvals,
    status: "approved",
    decision: { by: actor, at, outcome: "approved", reason, break_glass: true },
    break_glass: { by: actor, person, at, reason, freeze, reviews: [] },
  };
  return {
    ok: true,
    proposal: next,
    events: [
      {
        type: "break_glass.used",
        actor,
        details: { plan_sha256: p.plan_sha256, person, reason, freeze, replaced_own_approval: replaced },
      },
      {
        type: "proposal.approved",
        actor,
        details: { plan_sha256: p.plan_sha256, approvers: [input.user], people: [person], break_glass: true, reason },
      },
    ],
  };
}

/** An answer to "Was this break-glass approval justified?": by whom, and yes or no. */
export interface BreakGlassReview {
  user: string;
  standing: Standing;
  memberOf: readonly string[];
  justified: boolean;
  via: string;
}

/**
 * The follow-up review of a break-glass approval, answered by the action's normal approvers (not whoever broke the
 * glass), one answer per person, whatever the proposal's status since. It is a record, never a decision.
 */
export function applyBreakGlassReview(p: Proposal, review: BreakGlassReview, now: number): Transition {
  const actor = slackActor(review.user);
  const refuse = refuser(p, actor, "break_glass.review_refused", { justified: review.justified }, review.via);
  const use = p.break_glass;
  if (!use) return refuse("no_break_glass", "This proposal was not approved through break-glass.");
  const why = standingRefusal(review.standing);
  if (why !== null) return refuse("not_a_member", why);
  if (!listedIn(p.rule.approvers, review.user, review.memberOf)) {
    return refuse("not_a_reviewer", `Only ${p.action.type}'s approvers review its break-glass approvals.`);
  }
  const person = personOf(p, review.user);
  if (person === use.person) return refuse("not_a_reviewer", "You broke the glass: the other approvers review it.");
  if (use.reviews.some((r) => r.person === person)) return refuse("already_reviewed", "You already answered.");
  const at = new Date(now).toISOString();
  const next: Proposal = {
    ...p,
    break_glass: { ...use, reviews: [...use.reviews, { by: actor, person, at, justified: review.justified }] },
  };
  return {
    ok: true,
    proposal: next,
    events: [{ type: "break_glass.reviewed", actor, details: { person, justified: review.justified, by: use.by } }],
  };
}

/**
 * An edit from the Edit modal (edit before approve): who, where they stand, their groups among the rule's, and the new
 * value of each param they changed (`undefined`: left out of the plan).
 */
export interface EditInput {
  user: string;
  standing: Standing;
  memberOf: readonly string[];
  values: Readonly<Record<string, unknown>>;
  /** The plan the modal was opened on: a submission after another edit is refused (it would undo that one unseen). */
  base?: string | undefined;
  via: string;
}

/**
 * Whether `user` may edit `p` now, before any value is looked at (the Edit button's check): an approval whose action
 * has editable params, not created in a change freeze, not requester_only; someone who may decide it now (the same
 * mayDecide as a click: listed, a full member, narrowed by a risk rule); never the requester, through any identity.
 */
export function mayEdit(p: Proposal, user: string, memberOf: readonly string[], standing: Standing): Verdict {
  const why = standingRefusal(standing);
  if (why !== null) return { ok: false, code: "not_a_member", message: why };
  const edit = p.rule.edit;
  if (p.kind === "verify" || !edit || edit.params.length === 0)
    return { ok: false, code: "not_editable", message: `${p.action.type} has no params an approver may edit.` };
  if (p.rule.freeze) {
    const message = `This proposal was created during the change freeze "${p.rule.freeze.name}": it cannot be edited.`;
    return { ok: false, code: "frozen", message };
  }
  if (p.rule.requester_only)
    return { ok: false, code: "requester_only", message: "This proposal is its requester's call alone: no edits." };
  const allowed = mayDecide(p, user, memberOf, "edit", standing);
  if (!allowed.ok) return allowed;
  if (p.requested_by !== null && personOf(p, p.requested_by) === personOf(p, user)) {
    return {
      ok: false,
      code: "self_edit",
      message: "You requested this action: its approvers may edit it, its requester may not.",
    };
  }
  return { ok: true };
}

/**
 * Before the Edit modal opens, and again on its submission: may `who` edit `p` now? A refusal is audited like a
 * refused click (`edit.refused`); allowing changes nothing.
 */
export function precheckEdit(
  p: Proposal,
  who: { user: string; memberOf: readonly string[]; standing: Standing; via: string },
  now: number,
): { ok: true } | Refused {
  const refuse = refuser(p, slackActor(who.user), "edit.refused", {}, who.via);
  if (p.status !== "pending") return refuse("not_pending", notPendingMessage(p));
  if (now >= Date.parse(p.expires_at)) return refuse("expired", "This proposal expired; nothing ran.");
  const allowed = mayEdit(p, who.user, who.memberOf, who.standing);
  if (!allowed.ok) return refuse(allowed.code, allowed.message);
  return { ok: true };
}

// Frozen schemas compiled once per schema object (a proposal's rule stays the same object while the object holds it).
const editValidators = new WeakMap<object, Validator | null>();

function editValidator(schema: Record<string, unknown>): Validator | null {
  if (!editValidators.has(schema)) {
    const compiled = compileParamsSchema(schema, "params");
    editValidators.set(schema, compiled.ok ? compiled.validator : null);
  }
  return editValidators.get(schema) ?? null;
}

/** Problems of edited params against the frozen params_schema and edit_schema (one that does not compile refuses). */
function editedParamsProblems(edit: NonNullable<Proposal["rule"]["edit"]>, params: Record<string, unknown>) {
  const details: ErrorDetail[] = [];
  const checks = [
    [edit.params_schema, "params_schema"],
    [edit.schema, "edit_schema"],
  ] as const;
  for (const [schema, name] of checks) {
    if (schema === null) continue;
    const validator = editValidator(schema);
    if (validator === null) details.push({ path: "params", message: `could not be checked against ${name}` });
    else details.push(...schemaErrors(validator, params, "params"));
  }
  return details;
}

/** The index of the risk rule the params make apply (frozen conditions), or null. */
function riskIndexFor(p: Proposal, conditions: readonly string[], params: Record<string, unknown>): number | null {
  if (conditions.length === 0) return p.rule.risk?.index ?? null;
  const rules = conditions.map(
    (when): RiskRule => ({
      when,
      label: when,
      required_approvals: null,
      approvers: null,
      ttl_seconds: null,
      confirm: false,
    }),
  );
  const input = {
    params,
    summary: p.summary,
    reason: p.reason,
    blast_radius: p.blast_radius,
    rollback: p.rollback,
    ...(p.requested_by === null ? {} : { requested_by: p.requested_by }),
  };
  return matchRiskRule(rules, input)?.index ?? null;
}

/**
 * Edit before approve: an approver changes some of the editable params. The edited params must pass the action's
 * params_schema and edit_schema (as frozen) and leave the same risk rule in force; the plan hash changes, and every
 * approval given so far is voided (kept on the edit, counted no longer). Four-eyes then holds over the edit: an
 * editor's approval never completes the edited plan alone (mayCountApproval), nor does an editor break the glass.
 */
export function applyEdit(p: Proposal, input: EditInput, now: number): Transition {
  const actor = slackActor(input.user);
  const refuse = refuser(p, actor, "edit.refused", { params: Object.keys(input.values) }, input.via);
  const allowed = precheckEdit(p, input, now);
  if (!allowed.ok) return refuse(allowed.code, allowed.message);
  if (input.base !== undefined && input.base !== p.plan_sha256)
    return refuse("changed", "The params were edited meanwhile: open Edit again to see them as they are now.");
  const edit = p.rule.edit!;
  const outside = Object.keys(input.values).filter((name) => !edit.params.includes(name));
  if (outside.length > 0) {
    return refuse(
      "not_an_editable_param",
      `Only ${edit.params.join(", ")} can be edited on ${p.action.type}; not ${outside.join(", ")}.`,
    );
  }
  const params: Record<string, unknown> = { ...p.action.params };
  const changes: ParamChange[] = [];
  for (const [param, value] of Object.entries(input.values)) {
    const from = Object.hasOwn(params, param) ? params[param] : undefined;
    if (canonicalJson(from ?? null) === canonicalJson(value ?? null) && (from === undefined) === (value === undefined))
      continue;
    changes.push({ param, from: from ?? null, to: value ?? null });
    if (value === undefined) delete params[param];
    else params[param] = value;
  }
  if (changes.length === 0) return refuse("no_change", "Nothing changed: the params are as proposed.");
  const details = [...editedParamsProblems(edit, params), ...planProblems(params, "params")];
  if (details.length > 0) {
    const said = details.map((d) => `${d.path}: ${d.message}`).join("; ");
    return { ...refuse("invalid_params", `The edited params are not acceptable: ${said}`), details };
  }
  if (riskIndexFor(p, edit.rules, params) !== (p.rule.risk?.index ?? null)) {
    return refuse(
      "rule_changed",
      "This edit would change which risk rule applies to the proposal: ask for a new proposal instead.",
    );
  }
  const at = new Date(now).toISOString();
  const person = personOf(p, input.user);
  const action = { type: p.action.type, params };
  const plan = planSha256({
    action,
    summary: p.summary,
    reason: p.reason,
    blast_radius: p.blast_radius,
    rollback: p.rollback,
  });
  const record: Edit = {
    by: actor,
    person,
    at,
    from_plan_sha256: p.plan_sha256,
    plan_sha256: plan,
    changes,
    voided_approvals: p.approvals,
  };
  return {
    ok: true,
    proposal: { ...p, action, plan_sha256: plan, approvals: [], edits: [...(p.edits ?? []), record] },
    events: [
      {
        type: "proposal.edited",
        actor,
        details: {
          person,
          from_plan_sha256: p.plan_sha256,
          plan_sha256: plan,
          changes,
          voided_approvals: p.approvals.map((a) => approvalPerson(p, a)),
          via: input.via,
        },
      },
    ],
  };
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
      return p.kind === "verify" ? `Already answered by ${who(d?.by)}.` : `Already denied by ${who(d?.by)}.`;
    case "acknowledged":
    case "escalated":
      return `Already answered by ${who(d?.by)}.`;
    default:
      return `Already approved by ${who(d?.by)}; nothing more to decide.`;
  }
}

function who(actor: string | undefined): string {
  if (!actor) return "someone";
  return actor.startsWith("slack:") ? `<@${actor.slice(6)}>` : actor;
}

/** Applies a Slack click (approve, deny, escalate, or a verification prompt's answer) at time `now` (ms). */
export function applyClick(p: Proposal, click: Click, now: number): Transition {
  const actor = slackActor(click.user);
  const refuse = refuser(p, actor, "click.refused", { action: click.kind }, click.via);

  if (p.status !== "pending") return refuse("not_pending", notPendingMessage(p));
  if (now >= Date.parse(p.expires_at)) {
    // The deadline passed but the alarm has not fired yet: the click is late, and the
    // expiry it reveals is applied by the caller (applyExpiry) in the same step.
    return refuse("expired", "This proposal expired; nothing ran.");
  }
  if (click.drawn !== undefined && click.drawn !== drawnState(p)) return refuse("changed", CHANGED_MESSAGE);
  // A click that does not say which plan it saw is taken to have seen the plan as created: an edited plan is approved
  // only by a view drawn on it (fails closed).
  if (click.kind === "approve" && click.drawn === undefined && !drawnOnPlan(p, click.plan ?? null)) {
    return refuse("changed", EDITED_SINCE_DRAWN);
  }
  if (p.kind === "verify" ? !isVerifyAnswer(click.kind) : isVerifyAnswer(click.kind)) {
    return refuse(
      "wrong_kind",
      p.kind === "verify"
        ? "This is a question to answer, not an approval."
        : "This proposal asks for approval, not an answer.",
    );
  }
  const allowed = mayDecide(p, click.user, click.memberOf, click.kind, click.standing);
  if (!allowed.ok) return refuse(allowed.code, allowed.message);

  if (isVerifyAnswer(click.kind)) return answerVerify(p, click.kind, actor, click.via, now);

  if (click.kind === "escalate") {
    if (!p.rule.escalation) return refuse("no_escalation", "This action has no escalation path.");
    if (p.escalated) return refuse("already_escalated", "Already escalated.");
    return escalate(p, actor, now, {});
  }
  return decideApproval(p, { kind: click.kind, approver: click.user, actor, reason: click.reason }, now, refuse, {});
}

/** The escalation itself, by a click or by the clock: the escalation approvers decide from now on, anew. */
function escalate(p: Proposal, actor: string, now: number, extra: Record<string, unknown>): Transition {
  const escalation = p.rule.escalation!;
  const at = new Date(now).toISOString();
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
        details: { approvers: escalation.approvers, channel: escalation.channel, expires_at: expires, ...extra },
      },
    ],
  };
}

/** The actor of an automatic escalation: signoff itself, which is nobody's vote and nobody's person. */
export const AUTO_ESCALATION_ACTOR = "signoff";

/** Whether the proposal was escalated by the clock (escalation.after_seconds) rather than by someone's click. */
export function escalatedAutomatically(p: Proposal): boolean {
  return p.escalated?.by === AUTO_ESCALATION_ACTOR;
}

/** When an undecided proposal escalates by itself (Unix ms), or null: no after_seconds, or not before its deadline. */
export function autoEscalationAt(p: Proposal): number | null {
  const after = p.rule.escalation?.after_seconds;
  if (after === undefined || after === null || p.kind === "verify") return null;
  const at = Date.parse(p.created_at) + after * 1000;
  return at < Date.parse(p.expires_at) ? at : null;
}

/**
 * Escalates a proposal nobody decided by `escalation.after_seconds` (issue 16), exactly as an Escalate click would:
 * the same transition, recorded with actor `signoff`. It is no one's vote: nobody is excluded as its escalator, and
 * the escalated decision still needs its own required_approvals of people other than the requester (mayCountApproval).
 * Anything no longer waiting (decided, expired, already escalated by a click) is left alone.
 */
export function applyAutoEscalation(p: Proposal, now: number): Transition {
  const due = autoEscalationAt(p);
  const nothing = (message: string): Transition => ({ ok: false, code: "not_pending", message, events: [] });
  if (p.status !== "pending" || now >= Date.parse(p.expires_at)) return nothing("not pending: nothing to escalate");
  if (p.escalated) return nothing("already escalated");
  // When is the job's business (scheduled at autoEscalationAt); here only whether the action escalates by itself.
  if (due === null) return nothing("no automatic escalation for this proposal");
  const after = p.rule.escalation?.after_seconds ?? null;
  return escalate(p, AUTO_ESCALATION_ACTOR, now, { automatic: true, after_seconds: after });
}

/**
 * Before the Deny modal opens (Slack asks for the reason first): may `user` deny now? Allowing
 * changes nothing, since the deny itself arrives with the modal; a refusal is audited exactly
 * like a refused click. Expiry that is due is applied by the caller first (applyExpiry).
 */
export function precheckDeny(
  p: Proposal,
  user: string,
  memberOf: readonly string[],
  standing: Standing,
  drawn?: string,
): { ok: true } | Refused {
  const refuse = refuser(
    p,
    slackActor(user),
    "click.refused",
    { action: "deny" },
    drawn === undefined ? "slack" : "slack_home",
  );
  if (p.status !== "pending") return refuse("not_pending", notPendingMessage(p));
  if (drawn !== undefined && drawn !== drawnState(p)) return refuse("changed", CHANGED_MESSAGE);
  const allowed = mayDecide(p, user, memberOf, "deny", standing);
  if (!allowed.ok) return refuse(allowed.code, allowed.message);
  return { ok: true };
}

/** A decision through a signed link: who it was minted for and what it says (already signature-checked). */
export interface LinkDecision {
  recipient: string;
  /**
   * Who opened the link, as the identity provider vouched for it at decision time (the e-mail of a verified
   * Cloudflare Access token), or null. Approval links need it; verification prompts' links go by possession.
   */
  identity: string | null;
  choice: LinkChoice;
  /** Deny's optional reason, from the confirmation page. */
  reason?: string;
  /** The plan the confirmation page showed (a short plan hash): an approval after an edit of the params is refused. */
  plan?: string;
}

/**
 * Whether a signed link's recipient may decide `p` now: one of the policy's link recipients
 * (or the Teams identity) for an approval still with its first approvers; the prompt's own
 * `recipient` for a verification prompt.
 */
export function mayDecideByLink(p: Proposal, recipient: string, identity: string | null): Verdict {
  const links = p.rule.links ?? null;
  if (links === null)
    return { ok: false, code: "links_disabled", message: "Signed links are not enabled for this action." };
  if (p.kind === "verify") {
    if (p.recipient === null || recipient !== p.recipient) {
      return { ok: false, code: "not_a_recipient", message: "This question is addressed to someone else." };
    }
    return { ok: true };
  }
  if (p.escalated) {
    return {
      ok: false,
      code: "not_a_recipient",
      message: "This proposal was escalated: the decision is now with the escalation approvers in Slack.",
    };
  }
  if (!links.recipients.includes(recipient) && recipient !== links.teams_recipient) {
    return { ok: false, code: "not_a_recipient", message: "This link's recipient may not decide this proposal." };
  }
  // Holding a link is not enough to decide an approval: whoever forwarded it, or the proposer who saw it, must not
  // count as its recipient. The person signed in now must be the recipient (or, on the Teams card's shared links,
  // one of the recipients; with no recipient list, whoever the identity provider lets in counts as themselves).
  if (identity === null) {
    return {
      ok: false,
      code: "identity_required",
      message: "Sign in to decide: approval links count only for the person they were sent to.",
    };
  }
  const person = personOf(p, identity);
  const allowed =
    recipient === links.teams_recipient
      ? links.recipients.length === 0 || links.recipients.some((r) => personOf(p, r) === person)
      : personOf(p, recipient) === person;
  if (!allowed) {
    return {
      ok: false,
      code: "wrong_identity",
      message: `You are signed in as ${identity}, but this link was sent to someone else.`,
    };
  }
  return { ok: true };
}

/** Everyone signed links are issued for: the policy's recipients and Teams identity, or a verification prompt's recipient. */
export function linkDeciders(p: Proposal): string[] {
  const links = p.rule.links ?? null;
  if (links === null) return [];
  if (p.kind === "verify") return p.recipient === null ? [] : [p.recipient];
  return [...links.recipients, ...(links.teams_recipient === null ? [] : [links.teams_recipient])];
}

/** The choices a link can carry for this proposal. */
export function linkChoices(p: Proposal): LinkChoice[] {
  return p.kind === "verify" ? [...VERIFY_ANSWERS] : ["approve", "deny"];
}

/**
 * Whom the links on the Teams card are for: the policy's Teams identity, on approvals only. A verification prompt's
 * links decide by possession, so they never go into a shared channel (SPEC 12; the policy refuses its teams_webhook).
 */
export function teamsRecipient(p: Proposal): string | null {
  if (!p.teams || p.kind !== "approval") return null;
  return p.rule.links?.teams_recipient ?? null;
}

/**
 * Whom signoff mails approval links to (SPEC 12): the e-mail addresses among an approval's link recipients. None for a
 * proposal created in a change freeze: no link approval counts there, so a mail would only invite a refusal.
 */
export function mailRecipients(p: Proposal): string[] {
  if (p.kind !== "approval" || p.rule.freeze) return [];
  return (p.rule.links?.recipients ?? []).filter(isMailRecipient);
}

/** Applies a signed-link decision at time `now` (ms), with the same rules and races as a click. */
export function applyLink(p: Proposal, link: LinkDecision, now: number): Transition {
  const actor = linkActor(link.recipient);
  const refuse = refuser(p, actor, "link.refused", { choice: link.choice }, "link");
  if (p.status !== "pending") return refuse("not_pending", notPendingMessage(p));
  if (now >= Date.parse(p.expires_at)) return refuse("expired", "This proposal expired; nothing ran.");
  const verifyChoice = isVerifyAnswer(link.choice);
  if (p.kind === "verify" ? !verifyChoice : verifyChoice)
    return refuse("wrong_kind", "This link does not fit this proposal.");
  const allowed = mayDecideByLink(p, link.recipient, link.identity);
  if (!allowed.ok) return refuse(allowed.code, allowed.message);
  if (link.choice === "approve" && !drawnOnPlan(p, link.plan ?? null)) {
    return refuse("changed", "The params were edited since this page was opened: open the link again to see them.");
  }
  if (isVerifyAnswer(link.choice)) return answerVerify(p, link.choice, actor, "link", now);
  if ((link.choice !== "approve" && link.choice !== "deny") || link.identity === null)
    return refuse("wrong_kind", "This link does not fit this proposal.");
  // Recorded under the identity that signed in, which the approval and the audit name with its person.
  const signedIn = linkActor(link.identity);
  return decideApproval(
    p,
    { kind: link.choice, approver: signedIn, actor: signedIn, reason: link.reason },
    now,
    refuse,
    {
      via: "link",
      recipient: link.recipient,
    },
  );
}

/** A signed link as the proposal issued it (src/proposal/store.ts `links`). */
export interface IssuedLinkState {
  recipient: string;
  choice: LinkChoice;
  /** When it decided (Unix ms), or null while unused. */
  used_at: number | null;
}

/** A signed link presented to decide: its verified claims, and `expires` (the token's `e`, Unix seconds). */
export interface LinkUse extends LinkDecision {
  expires: number;
}

/**
 * Applies a signed link at time `now` (ms): it must be one this proposal issued (`issued`, found
 * by the token's nonce) for the same recipient and choice, unused and unexpired; then it decides
 * as applyLink says. On success the caller marks `issued` used in the same step.
 */
export function applyLinkUse(p: Proposal, issued: IssuedLinkState | null, use: LinkUse, now: number): Transition {
  const refuse = refuser(p, linkActor(use.recipient), "link.refused", { choice: use.choice }, "link");
  if (!p.rule.links) return refuse("links_disabled", "Signed links are not enabled for this action.");
  if (!issued || issued.recipient !== use.recipient || issued.choice !== use.choice)
    return refuse("unknown_link", "This link was not issued for this proposal.");
  if (issued.used_at !== null) return refuse("already_used", "This link was already used: each link decides once.");
  if (now > use.expires * 1000) return refuse("expired", "This link has expired; nothing was decided.");
  const { recipient, identity, choice, reason, plan } = use;
  return applyLink(p, { recipient, identity, choice, ...(reason ? { reason } : {}), ...(plan ? { plan } : {}) }, now);
}

/**
 * The audit record of a link refused before it reached a decision (a forged signature that names
 * this proposal, a failed CSRF check). `recipient` only when the token verified: a forgery's
 * claims are not repeated.
 */
export function linkRefusal(
  p: Proposal,
  code: string,
  recipient: string | null,
  choice: LinkChoice | null,
): EventDraft {
  return {
    type: "link.refused",
    actor: recipient === null ? "link:?" : linkActor(recipient),
    details: { ...(choice ? { choice } : {}), code, status: p.status, via: "link" },
  };
}

type Refuse = (code: RefusalCode, message: string) => Refused;

function refuser(p: Proposal, actor: string, type: string, what: Record<string, unknown>, via: string): Refuse {
  return (code, message) => ({
    ok: false,
    code,
    message,
    events: [{ type, actor, details: { ...what, code, status: p.status, via } }],
  });
}

/**
 * Approve or deny by someone already allowed to. `approver` is what approvals[] records: the
 * Slack user id for clicks, `link:<recipient>` for links; M-of-N counts distinct entries.
 */
function decideApproval(
  p: Proposal,
  d: { kind: "approve" | "deny"; approver: string; actor: string; reason?: string | undefined },
  now: number,
  refuse: Refuse,
  extra: Record<string, unknown>,
): Transition {
  const { actor } = d;
  const at = new Date(now).toISOString();
  if (d.kind === "deny") {
    const reason = d.reason?.trim() || undefined;
    const next: Proposal = {
      ...p,
      status: "denied",
      decision: { by: actor, at, outcome: "denied", ...(reason ? { reason } : {}) },
    };
    return {
      ok: true,
      proposal: next,
      events: [{ type: "proposal.denied", actor, details: { reason: reason ?? null, ...extra } }],
    };
  }

  // The one gate every approval passes, whichever channel it came through: one person, one vote (SPEC 12).
  const person = personOf(p, d.approver);
  const counts = mayCountApproval(p, person);
  if (!counts.ok) return refuse(counts.code, counts.message);
  const approvals = [...p.approvals, { user: d.approver, person, at }];
  const next = { ...p, approvals };
  const count = approvingPeople(next).length;
  const events: EventDraft[] = [
    {
      type: "approval.recorded",
      actor,
      details: { plan_sha256: p.plan_sha256, person, count, required: requiredApprovals(p), ...extra },
    },
  ];
  if (count < requiredApprovals(p)) {
    return { ok: true, proposal: next, events };
  }
  events.push({
    type: "proposal.approved",
    actor,
    details: {
      plan_sha256: p.plan_sha256,
      approvers: approvals.map((a) => a.user),
      people: approvingPeople(next),
      ...extra,
    },
  });
  return {
    ok: true,
    proposal: { ...p, approvals, status: "approved", decision: { by: actor, at, outcome: "approved" } },
    events,
  };
}

const ANSWER_STATUS = { yes: "acknowledged", no: "denied", unsure: "escalated" } as const satisfies Record<
  VerifyAnswer,
  Status
>;

/** A verification prompt's answer: the answer is the outcome (yes → acknowledged, no → denied, unsure → escalated). */
function answerVerify(p: Proposal, answer: VerifyAnswer, actor: string, via: string, now: number): Transition {
  const at = new Date(now).toISOString();
  const status = ANSWER_STATUS[answer];
  const label = verifyLabels(p)[answer];
  return {
    ok: true,
    proposal: { ...p, status, decision: { by: actor, at, outcome: status, answer } },
    events: [
      { type: "verify.answered", actor, details: { answer, label, via } },
      { type: `proposal.${status}`, actor, details: { answer, via } },
    ],
  };
}

/** A new proposal (built by src/proposal/create.ts) enters `pending`: the event that opens its audit chain. */
export function applyCreate(p: Proposal): Transition {
  return {
    ok: true,
    proposal: p,
    events: [
      {
        type: "proposal.created",
        actor: `key:${p.created_by}`,
        details: {
          action_type: p.action.type,
          plan_sha256: p.plan_sha256,
          requested_by: p.requested_by,
          expires_at: p.expires_at,
        },
      },
    ],
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
    events: [
      {
        type: "proposal.expired",
        actor: "system",
        details: { deadline: p.expires_at, lateness_ms: now - Date.parse(p.expires_at) },
      },
    ],
  };
}

/**
 * Cancels a pending proposal at the request of the key that created it; `reason` (the Alertmanager receiver's "alert
 * resolved") is kept on the decision, so the card and the audit log say why.
 */
export function applyCancel(p: Proposal, keyName: string, now: number, reason?: string): Transition {
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
    proposal: {
      ...p,
      status: "cancelled",
      decision: { by: actor, at, outcome: "cancelled", ...(reason === undefined ? {} : { reason }) },
    },
    events: [{ type: "proposal.cancelled", actor, details: reason === undefined ? {} : { reason } }],
  };
}

/** Starts a dispatch attempt: counted (and audited) before the request leaves, so a crash mid-flight shows. */
export function applyDispatchAttempt(p: Proposal): Transition {
  // A verification prompt never reaches `approved`; the kind check keeps it so should anything change.
  if (p.status !== "approved" || p.kind === "verify")
    return { ok: false, code: "wrong_state", message: `proposal is ${p.status}: nothing to dispatch`, events: [] };
  const attempt = p.dispatch.attempts + 1;
  return {
    ok: true,
    proposal: { ...p, dispatch: { ...p.dispatch, attempts: attempt } },
    events: [{ type: "dispatch.attempt", actor: "system", details: { attempt, plan_sha256: p.plan_sha256 } }],
  };
}

/** What came back from one dispatch attempt. */
export interface DispatchReply {
  attempt: number;
  answer: RunnerAnswer;
  /** How long the runner took to answer (or to fail), in ms. */
  ms: number;
  /** The runner's body went past what is read of it (src/proposal/jobs/dispatch.ts MAX_ANSWER_BYTES). */
  truncated: boolean;
}

/** A transition that may ask for another attempt at `retryAt` (ms); null when the dispatch is over. */
export type DispatchStep = Transition & { retryAt: number | null };

/**
 * Applies the runner's answer to a dispatch (SPEC 6) at time `now` (ms): a final result, accepted
 * (`dispatched`, the result comes later), refused (`dispatch_failed`), or worth another attempt at
 * `retry.at` until `retry.maxAttempts` are spent. Refused when the proposal is no longer `approved`
 * (a result arrived on the result route meanwhile): then nothing is recorded.
 */
export function applyDispatchAnswer(
  p: Proposal,
  reply: DispatchReply,
  retry: { maxAttempts: number; at: number },
  now: number,
): DispatchStep {
  if (p.status !== "approved") {
    const message = `proposal is ${p.status}: the answer came after the outcome`;
    return { ok: false, code: "wrong_state", message, events: [], retryAt: null };
  }
  const { answer, attempt } = reply;
  const at = new Date(now).toISOString();
  const answered = { attempt, outcome: answer.kind, ms: reply.ms, ...(reply.truncated ? { truncated: true } : {}) };
  const done = (proposal: Proposal, events: EventDraft[]): DispatchStep => ({
    ok: true,
    proposal,
    events,
    retryAt: null,
  });
  switch (answer.kind) {
    case "final":
      return done(
        {
          ...p,
          status: answer.status,
          dispatch: { ...p.dispatch, dispatched_at: at, last_error: null },
          result: { status: answer.status, output: answer.output, at },
        },
        [
          { type: "dispatch.answer", actor: "runner", details: answered },
          { type: `proposal.${answer.status}`, actor: "runner", details: { output_chars: answer.output.length } },
        ],
      );
    case "accepted":
      return done({ ...p, status: "dispatched", dispatch: { ...p.dispatch, dispatched_at: at, last_error: null } }, [
        { type: "dispatch.answer", actor: "runner", details: answered },
        { type: "proposal.dispatched", actor: "runner", details: {} },
      ]);
    case "refused": {
      // The runner's reason is kept as data beside signoff's own error, and audited with its answer (issue 13).
      const refusal = { http_status: answer.httpStatus, reason: answer.reason };
      return done({ ...p, status: "dispatch_failed", dispatch: { ...p.dispatch, last_error: answer.error, refusal } }, [
        {
          type: "dispatch.answer",
          actor: "runner",
          details: { ...answered, error: answer.error, http_status: answer.httpStatus, runner_reason: answer.reason },
        },
        { type: "proposal.dispatch_failed", actor: "system", details: { reason: "refused", error: answer.error } },
      ]);
    }
    case "retry": {
      if (attempt >= retry.maxAttempts) {
        return done({ ...p, status: "dispatch_failed", dispatch: { ...p.dispatch, last_error: answer.error } }, [
          { type: "dispatch.answer", actor: "runner", details: { ...answered, error: answer.error } },
          {
            type: "proposal.dispatch_failed",
            actor: "system",
            details: { reason: "retries_exhausted", attempts: attempt, error: answer.error },
          },
        ]);
      }
      const retryAt = new Date(retry.at).toISOString();
      return {
        ok: true,
        proposal: { ...p, dispatch: { ...p.dispatch, last_error: answer.error } },
        events: [
          {
            type: "dispatch.answer",
            actor: "runner",
            details: { ...answered, error: answer.error, retry_at: retryAt },
          },
        ],
        retryAt: retry.at,
      };
    }
  }
}

/** A runner's asynchronous result (SPEC 6), its signature already checked by the Worker. */
export interface RunnerResult {
  /** Its `webhook-id`. */
  webhookId: string;
  status: "succeeded" | "failed";
  output: string;
  /** Whether this proposal accepted a result with the same `webhook-id` before. */
  seenBefore: boolean;
}

/**
 * Records a runner's result at time `now` (ms): only while a dispatch awaits one, i.e. `dispatched`,
 * or `approved` with an attempt under way (the runner may report before its answer arrives).
 */
export function applyRunnerResult(p: Proposal, result: RunnerResult, now: number): Transition {
  const webhook_id = result.webhookId;
  if (result.seenBefore) {
    return {
      ok: false,
      code: "replayed",
      message: "this result was already delivered (webhook-id seen before)",
      events: [{ type: "result.refused", actor: "runner", details: { code: "replayed", webhook_id } }],
    };
  }
  const awaited = p.status === "dispatched" || (p.status === "approved" && p.dispatch.attempts > 0);
  if (!awaited) {
    return {
      ok: false,
      code: "wrong_state",
      message: p.result
        ? "a result was already recorded for this proposal"
        : `proposal is ${p.status}: no dispatch awaits a result`,
      events: [
        { type: "result.refused", actor: "runner", details: { code: "wrong_state", status: p.status, webhook_id } },
      ],
    };
  }
  const at = new Date(now).toISOString();
  const { status, output } = result;
  return {
    ok: true,
    proposal: {
      ...p,
      status,
      dispatch: { ...p.dispatch, dispatched_at: p.dispatch.dispatched_at ?? at },
      result: { status, output, at },
    },
    events: [{ type: `proposal.${status}`, actor: "runner", details: { webhook_id, output_chars: output.length } }],
  };
}

export function isTerminal(status: Status): boolean {
  return TERMINAL_STATUSES.has(status);
}
