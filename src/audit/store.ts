// The audit log's D1 queries, each a named function: append sealed events, read them back.
import type { AuditEvent } from "./chain.ts";

/** A stored event as `GET /v1/audit` returns it. */
export interface StoredAuditEvent extends AuditEvent {
  seq: number;
}

interface AuditRow {
  seq: number;
  proposal_id: string;
  idx: number;
  at_ms: number;
  type: string;
  actor: string;
  details: string;
  prev_hash: string;
  hash: string;
}

/**
 * Appends events in the order given, in one D1 batch (one transaction). A row that is
 * already there (same proposal and position) is skipped, so a flush retried after a lost
 * answer writes nothing twice.
 */
export async function appendAuditEvents(db: D1Database, events: readonly AuditEvent[]): Promise<void> {
  if (events.length === 0) return;
  const insert = db.prepare(
    `INSERT INTO audit_events (proposal_id, idx, at_ms, type, actor, details, prev_hash, hash)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
     ON CONFLICT (proposal_id, idx) DO NOTHING`,
  );
  await db.batch(
    events.map((e) =>
      insert.bind(
        e.proposal_id,
        e.idx,
        Date.parse(e.at),
        e.type,
        e.actor,
        JSON.stringify(e.details),
        e.prev_hash,
        e.hash,
      ),
    ),
  );
}

export interface AuditQuery {
  proposal_id?: string | undefined;
  type?: string | undefined;
  actor?: string | undefined;
  since_ms?: number | undefined;
  until_ms?: number | undefined;
  /** Only events after this sequence number (the paging cursor). */
  after_seq?: number | undefined;
  limit: number;
}

/** Events matching every given filter, oldest first (by arrival sequence). */
export async function queryAuditEvents(db: D1Database, query: AuditQuery): Promise<StoredAuditEvent[]> {
  const { results } = await db
    .prepare(
      `SELECT seq, proposal_id, idx, at_ms, type, actor, details, prev_hash, hash
       FROM audit_events
       WHERE (?1 IS NULL OR proposal_id = ?1)
         AND (?2 IS NULL OR type = ?2)
         AND (?3 IS NULL OR actor = ?3)
         AND (?4 IS NULL OR at_ms >= ?4)
         AND (?5 IS NULL OR at_ms < ?5)
         AND seq > ?6
       ORDER BY seq
       LIMIT ?7`,
    )
    .bind(
      query.proposal_id ?? null,
      query.type ?? null,
      query.actor ?? null,
      query.since_ms ?? null,
      query.until_ms ?? null,
      query.after_seq ?? 0,
      query.limit,
    )
    .all<AuditRow>();
  return results.map(fromRow);
}

function fromRow(row: AuditRow): StoredAuditEvent {
  return {
    seq: row.seq,
    proposal_id: row.proposal_id,
    idx: row.idx,
    at: new Date(row.at_ms).toISOString(),
    type: row.type,
    actor: row.actor,
    details: JSON.parse(row.details) as Record<string, unknown>,
    prev_hash: row.prev_hash,
    hash: row.hash,
  };
}
