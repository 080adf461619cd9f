// The audit log's D1 queries, each a named function: append sealed events, read them back, read each chain's head.
import type { AuditEvent } from "./chain.ts";

/** A stored event as `GET /v1/audit` returns it. */
export interface StoredAuditEvent extends AuditEvent {
  seq: number;
  /**
   * `<key id>:<base64 Ed25519 signature>` of this event as its chain's head, on the last event of each flush
   * (src/audit/signing.ts `signHead`); null on the others.
   */
  head_sig: string | null;
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
  head_sig: string | null;
}

/**
 * Appends events in the order given, in one D1 batch (one transaction), the last one carrying `headSig` (its
 * signature as the chain's head). A row that is already there (same proposal and position) is skipped, so a
 * flush retried after a lost answer writes nothing twice. `also`: statements that belong to the same step (the Home
 * tab's index rows), in the same batch; alone when there are no events.
 */
export async function appendAuditEvents(
  db: D1Database,
  events: readonly AuditEvent[],
  headSig: string | null = null,
  also: readonly D1PreparedStatement[] = [],
): Promise<void> {
  if (events.length === 0) {
    if (also.length > 0) await db.batch([...also]);
    return;
  }
  const insert = db.prepare(
    `INSERT INTO audit_events (proposal_id, idx, at_ms, type, actor, details, prev_hash, hash, head_sig)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
     ON CONFLICT (proposal_id, idx) DO NOTHING`,
  );
  await db.batch(
    events
      .map((e, i) =>
        insert.bind(
          e.proposal_id,
          e.idx,
          Date.parse(e.at),
          e.type,
          e.actor,
          JSON.stringify(e.details),
          e.prev_hash,
          e.hash,
          i === events.length - 1 ? headSig : null,
        ),
      )
      .concat(also),
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

/**
 * Events matching every given filter, oldest first (by arrival sequence). Only the filters given are written into
 * the statement, so SQLite plans each query for what it asks: a proposal's events through `(proposal_id, idx)`; the
 * other filters read the log in `seq` order from the cursor on (no index of their own: migrations/0006).
 */
export async function queryAuditEvents(db: D1Database, query: AuditQuery): Promise<StoredAuditEvent[]> {
  const terms = ["seq > ?1"];
  const values: unknown[] = [query.after_seq ?? 0];
  const term = (sql: string, value: unknown) => {
    if (value === undefined) return;
    values.push(value);
    terms.push(sql.replace("?", `?${values.length}`));
  };
  term("proposal_id = ?", query.proposal_id);
  term("type = ?", query.type);
  term("actor = ?", query.actor);
  term("at_ms >= ?", query.since_ms);
  term("at_ms < ?", query.until_ms);
  values.push(query.limit);
  const { results } = await db
    .prepare(
      `SELECT seq, proposal_id, idx, at_ms, type, actor, details, prev_hash, hash, head_sig
       FROM audit_events WHERE ${terms.join(" AND ")} ORDER BY seq LIMIT ?${values.length}`,
    )
    .bind(...values)
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
    head_sig: row.head_sig,
  };
}

/** A chain's last event in D1, and how many events the chain has there. */
export interface D1ChainHead {
  proposal_id: string;
  idx: number;
  hash: string;
  seq: number;
  count: number;
}

export interface D1Heads {
  /** Highest `seq` in the log (0 when it is empty). */
  max_seq: number;
  events: number;
  /** By proposal id. */
  chains: D1ChainHead[];
}

/** Every chain's head and the log's totals, read in one batch (one transaction, so they agree). */
export async function readChainHeads(db: D1Database): Promise<D1Heads> {
  const [totals, heads] = await db.batch([
    db.prepare(`SELECT COALESCE(MAX(seq), 0) AS max_seq, COUNT(*) AS events FROM audit_events`),
    db.prepare(
      `SELECT e.proposal_id, e.idx, e.hash, e.seq, c.count
       FROM (SELECT proposal_id, MAX(idx) AS idx, COUNT(*) AS count FROM audit_events GROUP BY proposal_id) AS c
       JOIN audit_events AS e ON e.proposal_id = c.proposal_id AND e.idx = c.idx
       ORDER BY e.proposal_id`,
    ),
  ]);
  const total = (totals!.results as Array<{ max_seq: number; events: number }>)[0]!;
  return { max_seq: total.max_seq, events: total.events, chains: heads!.results as D1ChainHead[] };
}

/** One chain's events from position `fromIdx` on, in order (a fresh read, outside any checkpoint's snapshot). */
export async function readChainFrom(db: D1Database, proposalId: string, fromIdx: number): Promise<StoredAuditEvent[]> {
  const { results } = await db
    .prepare(
      `SELECT seq, proposal_id, idx, at_ms, type, actor, details, prev_hash, hash, head_sig
       FROM audit_events WHERE proposal_id = ?1 AND idx >= ?2 ORDER BY idx`,
    )
    .bind(proposalId, fromIdx)
    .all<AuditRow>();
  return results.map(fromRow);
}
