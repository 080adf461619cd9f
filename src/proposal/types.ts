// The proposal's stored shape and its public view: the vocabulary every other module speaks.

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
] as const;
export type Status = (typeof STATUSES)[number];

export const TERMINAL_STATUSES: ReadonlySet<Status> = new Set([
  "denied",
  "expired",
  "cancelled",
  "succeeded",
  "failed",
  "dispatch_failed",
]);

/** Who may decide, frozen from the policy when the proposal is created (SPEC 3). */
export interface DecisionRule {
  /** Slack user ids (U…/W…) and user-group ids (S…). */
  approvers: string[];
  required_approvals: number;
  allow_self_approval: boolean;
  requester_only: boolean;
  confirm: boolean;
  channel: string | null;
  escalation: { approvers: string[]; channel: string | null; extend_ttl_seconds: number } | null;
}

export interface Approval {
  user: string;
  at: string;
}

export interface Decision {
  /** `slack:U…`, `key:<name>` or `system`. */
  by: string;
  at: string;
  outcome: "approved" | "denied" | "expired" | "cancelled";
  reason?: string;
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
  status: Status;
  action: { type: string; params: Record<string, unknown> };
  summary: string;
  reason: string;
  blast_radius: string;
  rollback: string;
  requested_by: string | null;
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
  dispatch: { attempts: number; last_error: string | null; dispatched_at: string | null };
  result: { status: "succeeded" | "failed"; output: string; at: string } | null;
  slack: { messages: SlackMessageRef[] };
}
