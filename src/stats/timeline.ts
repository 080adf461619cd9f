// What the audit log says about one proposal, for time-to-decision statistics (issue 16): its action, when it was
// created, its deadline as it stood, its final status, when and within which deadline it was decided, who approved,
// and whether anyone clicked at all. Pure: built from the D1 rows that src/stats/store.ts reads.

/** The audit event types the statistics read (everything else in a proposal's chain is bookkeeping). */
export const STATS_EVENT_TYPES = [
  "proposal.created",
  "approval.recorded",
  "proposal.approved",
  "proposal.denied",
  "proposal.expired",
  "proposal.cancelled",
  "proposal.escalated",
  "proposal.dispatched",
  "proposal.succeeded",
  "proposal.failed",
  "proposal.dispatch_failed",
  "proposal.acknowledged",
  "click.refused",
  "link.refused",
  "verify.answered",
] as const;

/** The event types that are a person's decision: the first of them (per proposal) ends the wait. */
const DECISIONS = new Set(["proposal.approved", "proposal.denied", "proposal.acknowledged"]);

/** One audit row as the statistics read it. */
export interface StatsRow {
  proposal_id: string;
  at_ms: number;
  type: string;
  actor: string;
  /** The event's details, JSON. */
  details: string;
}

export interface Timeline {
  id: string;
  action: string;
  created_ms: number;
  /** The status it ended in (or is in): the last status its audit trail records. */
  status: string;
  /** When a person decided it (approved, denied, answered), or null. */
  decided_ms: number | null;
  /** The deadline in force when it was decided (an escalation may have extended it), or null if undecided. */
  deadline_at_decision_ms: number | null;
  /** The person (or identity) of each approval recorded, escalated decisions included. */
  approvals: string[];
  /** Whether any person acted on it at all: a click or a link, counted or refused. */
  touched: boolean;
}

/** Whether an `proposal.escalated` event ends a verification prompt ("unsure") rather than moving a decision. */
function isAnswer(details: Record<string, unknown>): boolean {
  return typeof details.answer === "string";
}

const personal = (actor: string) => actor.startsWith("slack:") || actor.startsWith("link:");

/** Timelines of the proposals whose rows are given (each proposal's rows in chain order; created first). */
export function timelines(rows: readonly StatsRow[]): Timeline[] {
  const byId = new Map<string, { t: Timeline; deadline: number }>();
  for (const row of rows) {
    const details = parseDetails(row.details);
    if (row.type === "proposal.created") {
      const deadline = Date.parse(String(details.expires_at));
      const t: Timeline = {
        id: row.proposal_id,
        action: String(details.action_type),
        created_ms: row.at_ms,
        status: "pending",
        decided_ms: null,
        deadline_at_decision_ms: null,
        approvals: [],
        touched: false,
      };
      byId.set(row.proposal_id, { t, deadline });
      continue;
    }
    const entry = byId.get(row.proposal_id);
    if (!entry) continue; // its creation is outside what was read
    const { t } = entry;
    if (personal(row.actor)) t.touched = true;
    if (row.type === "approval.recorded") {
      t.approvals.push(typeof details.person === "string" ? details.person : row.actor);
      continue;
    }
    if (row.type === "proposal.escalated" && !isAnswer(details)) {
      const extended = Date.parse(String(details.expires_at));
      if (Number.isFinite(extended)) entry.deadline = extended;
      continue;
    }
    if (!row.type.startsWith("proposal.")) continue;
    t.status = row.type.slice("proposal.".length);
    const decision = DECISIONS.has(row.type) || row.type === "proposal.escalated";
    if (decision && t.decided_ms === null) {
      t.decided_ms = row.at_ms;
      t.deadline_at_decision_ms = entry.deadline;
    }
  }
  return [...byId.values()].map((entry) => entry.t);
}

function parseDetails(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
