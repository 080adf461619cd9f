// The proposal's stored shape and its public view: the vocabulary every other module speaks.
import type { DecisionRule } from "../config/policy.ts";

export const STATUSES = [
  "pending",
  "approved",
  "dispatched",
  "succeeded",
  "failed",
  "dispatch_failed",
  "denied",
  "expired",
  "cancelled",
  // Verification prompts only (kind "verify"): the addressee said yes / was not sure.
  "acknowledged",
  "escalated",
] as const;
export type Status = (typeof STATUSES)[number];

export const TERMINAL_STATUSES: ReadonlySet<Status> = new Set([
  "denied",
  "expired",
  "cancelled",
  "succeeded",
  "failed",
  "dispatch_failed",
  "acknowledged",
  "escalated",
]);

/**
 * "approval" asks approvers to let an action run; "verify" asks one person a question
 * ("was this you?") whose answer is the outcome: nothing is ever dispatched for it.
 */
export const PROPOSAL_KINDS = ["approval", "verify"] as const;
export type ProposalKind = (typeof PROPOSAL_KINDS)[number];

/** A verification prompt's three answers; "no" ends as `denied`, "unsure" as `escalated`. */
export const VERIFY_ANSWERS = ["yes", "no", "unsure"] as const;
export type VerifyAnswer = (typeof VERIFY_ANSWERS)[number];

/** What a signed link may decide: approve/deny on an approval, an answer on a verification prompt. */
export type LinkChoice = "approve" | "deny" | VerifyAnswer;

export interface Approval {
  /** A Slack user id, or `link:<identity>` for an approval given through a signed link. */
  user: string;
  /** The person behind `user` (the `people` directory's name, else the identity itself); absent in older proposals. */
  person?: string;
  at: string;
  /** Given through break-glass: this person approved alone, with a reason. */
  break_glass?: true;
}

export interface Decision {
  /** `slack:U…`, `link:<recipient>`, `key:<name>` or `system`. */
  by: string;
  at: string;
  outcome: "approved" | "denied" | "expired" | "cancelled" | "acknowledged" | "escalated";
  reason?: string;
  /** A verification prompt's answer. */
  answer?: VerifyAnswer;
  /** Approved through break-glass (its reason is `reason`). */
  break_glass?: true;
}

/** A break-glass approval and what the normal approvers said of it afterwards. */
export interface BreakGlassUse {
  /** `slack:U…`: whoever broke the glass. */
  by: string;
  person: string;
  at: string;
  reason: string;
  /** The change freeze it was used in, or null. */
  freeze: string | null;
  /** The normal approvers' follow-up review, one answer per person. */
  reviews: Array<{ by: string; person: string; at: string; justified: boolean }>;
}

/** One param an edit changed: its value before and after (`null` for a param left out). */
export interface ParamChange {
  param: string;
  from: unknown;
  to: unknown;
}

/** An approver's edit of the params before approving (edit before approve): who, what, and what it voided. */
export interface Edit {
  /** `slack:U…`: whoever edited. */
  by: string;
  person: string;
  at: string;
  /** The plan before and after: approvals of the one before no longer count. */
  from_plan_sha256: string;
  plan_sha256: string;
  changes: ParamChange[];
  /** The approvals given before the edit: recorded here, counted no longer. */
  voided_approvals: Approval[];
}

/** Where the Teams messages of a proposal stand (internal, like `slack`). */
export interface TeamsState {
  /** The policy's incoming-webhook / Workflows URL, frozen at creation: a credential, never shown. */
  webhook: string;
  /** Whether the card with the links was posted (or given up on). */
  card_posted: boolean;
  /** The last status a follow-up card announced (null: none yet). */
  announced: Status | null;
}

/** How the mail bringing one recipient their approval links ended: delivered, given up, or not sent (decided first). */
export type MailOutcome = "sent" | "failed" | "skipped";

/** Where the mails with approval links stand (internal, like `teams`): one per e-mail recipient of the rule's links. */
export interface MailState {
  /** Recipient → how its mail ended; a recipient not here is still to be mailed. Never mailed twice. */
  done: Record<string, MailOutcome>;
}

/** Why the runner refused a dispatch, as it said it (issue 13). */
export interface RunnerRefusal {
  http_status: number;
  /** Its answer's body, cut to 300 characters; null when it sent none. */
  reason: string | null;
}

export interface SlackMessageRef {
  channel: string;
  ts: string;
  /** "card" for the original message, "escalation" for the one posted on escalation. */
  role: "card" | "escalation";
}

/** Everything a proposal is, as the Durable Object stores it and GET /v1/proposals/:id shows it. */
export interface Proposal {
  id: string;
  /** "approval" unless the action's policy says "verify" (a verification prompt). */
  kind: ProposalKind;
  status: Status;
  action: { type: string; params: Record<string, unknown> };
  summary: string;
  reason: string;
  blast_radius: string;
  rollback: string;
  requested_by: string | null;
  /** A verification prompt's addressee for signed links (e-mail-like or opaque id), else null. */
  recipient: string | null;
  created_by: string;
  created_at: string;
  expires_at: string;
  plan_sha256: string;
  callback_url: string | null;
  metadata: Record<string, unknown> | null;
  rule: DecisionRule;
  approvals: Approval[];
  /** Set once escalated; approvals given before escalation move to `prior_approvals`. */
  escalated: { by: string; at: string; prior_approvals: Approval[] } | null;
  decision: Decision | null;
  dispatch: {
    attempts: number;
    last_error: string | null;
    dispatched_at: string | null;
    /**
     * The runner's refusal when it answered 4xx: its status and its body as data, cut and with invisible characters
     * replaced (src/dispatch/runner-answer.ts `refusalReason`); the runner's words, never signoff's. Absent otherwise.
     */
    refusal?: RunnerRefusal;
  };
  result: { status: "succeeded" | "failed"; output: string; at: string } | null;
  slack: { messages: SlackMessageRef[] };
  /** Teams delivery state; null when the action has no Teams webhook. Never shown by the API. */
  teams: TeamsState | null;
  /** Mail delivery of approval links; null when no link recipient is an e-mail address. Never shown by the API. */
  mail: MailState | null;
  /** Set when the proposal was approved through break-glass; absent otherwise. */
  break_glass?: BreakGlassUse;
  /** The edits approvers made before approving, oldest first; absent when none. `action.params` is the edited plan. */
  edits?: Edit[];
  /**
   * The proposer's `group_key`: pending proposals of the same key, action and key name share one Slack card
   * (docs/grouping.md). Absent when none was given.
   */
  group_key?: string;
}
