// The D1 reads behind GET /v1/stats and GET /metrics (issue 16): the audit rows of the proposals created in a window,
// and whole-log aggregates for the Prometheus counters and the decision-time histogram. Read-only, like every
// reader of the append-only log; each proposal's chain starts with its `proposal.created` event (idx 1).
import { STATS_EVENT_TYPES, type StatsRow } from "./timeline.ts";

/** The most proposals one GET /v1/stats reads (the earliest created in its window); `truncated` says when cut. */
export const MAX_STATS_PROPOSALS = 5_000;

export interface StatsWindow {
  since_ms: number;
  until_ms: number;
  action: string | null;
}

/**
 * The proposals created in a window, through the partial index `audit_events_created_by_time` (migrations/0006),
 * which SQLite uses only because the WHERE holds its condition `type = 'proposal.created'` as written there.
 */
export const CREATED_IN_WINDOW_SQL = `SELECT proposal_id FROM audit_events
  WHERE type = 'proposal.created' AND at_ms >= ?1 AND at_ms < ?2
    AND (?3 IS NULL OR json_extract(details, '$.action_type') = ?3)
  ORDER BY at_ms, seq LIMIT ?4`;

/** The rows of up to MAX_STATS_PROPOSALS proposals created in [since, until), and whether more were there. */
export async function statsRows(db: D1Database, w: StatsWindow): Promise<{ rows: StatsRow[]; truncated: boolean }> {
  const created = await db
    .prepare(CREATED_IN_WINDOW_SQL)
    .bind(w.since_ms, w.until_ms, w.action, MAX_STATS_PROPOSALS + 1)
    .all<{ proposal_id: string }>();
  const ids = created.results.slice(0, MAX_STATS_PROPOSALS).map((r) => r.proposal_id);
  if (ids.length === 0) return { rows: [], truncated: false };
  const { results } = await db
    .prepare(
      `SELECT proposal_id, at_ms, type, actor, details FROM audit_events
       WHERE proposal_id IN (SELECT value FROM json_each(?1)) AND type IN (SELECT value FROM json_each(?2))
       ORDER BY proposal_id, idx`,
    )
    .bind(JSON.stringify(ids), JSON.stringify(STATS_EVENT_TYPES))
    .all<StatsRow>();
  return { rows: results, truncated: created.results.length > MAX_STATS_PROPOSALS };
}

/** One aggregate row for the counters: how many events of `type` proposals of `action` recorded. */
export interface CounterRow {
  action: string;
  type: string;
  /** A verification prompt's answer (its `proposal.escalated` is an outcome, not an escalation). */
  answered: number;
  /** An escalation by the clock (`details.automatic`). */
  automatic: number;
  n: number;
}

/** The event types the counters count. */
export const COUNTED_TYPES = [...STATS_EVENT_TYPES.filter((t) => !t.endsWith(".refused")), "reminder.sent"];

export async function counterRows(db: D1Database): Promise<CounterRow[]> {
  const { results } = await db
    .prepare(
      `SELECT json_extract(c.details, '$.action_type') AS action, e.type AS type,
              json_extract(e.details, '$.answer') IS NOT NULL AS answered,
              COALESCE(json_extract(e.details, '$.automatic'), 0) AS automatic,
              COUNT(*) AS n
       FROM audit_events e
       JOIN audit_events c ON c.proposal_id = e.proposal_id AND c.idx = 1 AND c.type = 'proposal.created'
       WHERE e.type IN (SELECT value FROM json_each(?1))
       GROUP BY 1, 2, 3, 4
       ORDER BY 1, 2, 3, 4`,
    )
    .bind(JSON.stringify(COUNTED_TYPES))
    .all<CounterRow>();
  return results;
}

/** The decision-time histogram's upper bounds, in seconds (then +Inf). */
export const DECISION_BUCKETS = [10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400] as const;

/** Per action: cumulative counts per bucket (same order as DECISION_BUCKETS), the count and the sum of seconds. */
export interface HistogramRow {
  action: string;
  buckets: number[];
  count: number;
  sum: number;
}

/**
 * Seconds from creation to a person's decision (approved, denied, a verification prompt answered), per action.
 * The bounds are this module's constants, never input, so they are written into the statement.
 */
export async function decisionHistogram(db: D1Database): Promise<HistogramRow[]> {
  const sums = DECISION_BUCKETS.map((le, i) => `SUM(secs <= ${le}) AS b${i}`).join(", ");
  const { results } = await db
    .prepare(
      `SELECT action, COUNT(*) AS count, SUM(secs) AS sum, ${sums}
       FROM (SELECT json_extract(c.details, '$.action_type') AS action, (d.at_ms - c.at_ms) / 1000.0 AS secs
             FROM audit_events d
             JOIN audit_events c ON c.proposal_id = d.proposal_id AND c.idx = 1 AND c.type = 'proposal.created'
             WHERE d.type IN ('proposal.approved', 'proposal.denied', 'proposal.acknowledged')
                OR (d.type = 'proposal.escalated' AND json_extract(d.details, '$.answer') IS NOT NULL))
       GROUP BY action ORDER BY action`,
    )
    .all<Record<string, number | string>>();
  return results.map((r) => ({
    action: String(r.action),
    buckets: DECISION_BUCKETS.map((_, i) => Number(r[`b${i}`] ?? 0)),
    count: Number(r.count),
    sum: Number(r.sum ?? 0),
  }));
}
