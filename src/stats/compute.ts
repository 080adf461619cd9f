// Time-to-decision statistics per action (GET /v1/stats, issue 16), from proposal timelines. Pure; the formulas are
// documented in docs/stats.md and pinned by test/stats.test.ts on a fixture with known answers.
import type { Timeline } from "./timeline.ts";

export interface ActionStats {
  action: string;
  /** Proposals created in the window. */
  proposals: number;
  /** Their final status (as of now), counted. */
  by_status: Record<string, number>;
  /** Decided by a person (approved, denied, or a verification prompt answered). */
  decided: number;
  /** Seconds from creation to the decision, over the decided ones (nearest-rank percentiles); null when none. */
  time_to_decision_seconds: { p50: number | null; p90: number | null; max: number | null };
  /** Decided with at most 10 % of the TTL left (the deadline in force then): count, and share of `decided`. */
  decided_in_last_tenth: { count: number; share: number | null };
  /** Approvals recorded per person (or identity), escalated decisions included. */
  approvals_by_approver: Record<string, number>;
  /** Expired without anyone clicking anything (no click or link, counted or refused). */
  expired_untouched: number;
}

/** The nearest-rank percentile of sorted values: the smallest value with at least p % of them at or below it. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

/** Statistics for each action among `timelines`, actions in alphabetical order. */
export function actionStats(timelines: readonly Timeline[]): ActionStats[] {
  const byAction = new Map<string, Timeline[]>();
  for (const t of timelines) byAction.set(t.action, [...(byAction.get(t.action) ?? []), t]);
  return [...byAction.keys()].sort().map((action) => statsOf(action, byAction.get(action)!));
}

function statsOf(action: string, ts: readonly Timeline[]): ActionStats {
  const by_status: Record<string, number> = {};
  const approvals_by_approver: Record<string, number> = {};
  const seconds: number[] = [];
  let lastTenth = 0;
  let expiredUntouched = 0;
  for (const t of ts) {
    by_status[t.status] = (by_status[t.status] ?? 0) + 1;
    for (const who of t.approvals) approvals_by_approver[who] = (approvals_by_approver[who] ?? 0) + 1;
    if (t.status === "expired" && !t.touched) expiredUntouched += 1;
    if (t.decided_ms === null || t.deadline_at_decision_ms === null) continue;
    seconds.push((t.decided_ms - t.created_ms) / 1000);
    const ttl = t.deadline_at_decision_ms - t.created_ms;
    if (t.deadline_at_decision_ms - t.decided_ms <= ttl / 10) lastTenth += 1;
  }
  seconds.sort((a, b) => a - b);
  return {
    action,
    proposals: ts.length,
    by_status,
    decided: seconds.length,
    time_to_decision_seconds: {
      p50: percentile(seconds, 50),
      p90: percentile(seconds, 90),
      max: seconds.at(-1) ?? null,
    },
    decided_in_last_tenth: { count: lastTenth, share: seconds.length === 0 ? null : lastTenth / seconds.length },
    approvals_by_approver,
    expired_untouched: expiredUntouched,
  };
}
