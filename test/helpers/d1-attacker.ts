// What someone holding D1 write access (a D1 API token, the dashboard's console) can do to the audit log, for
// real: drop the append-only triggers, rewrite rows with recomputed hashes, cut or delete chains. Every attack
// runs inside `asAttacker`, which puts the table and its triggers back exactly as they were afterwards.
import { env } from "cloudflare:workers";
import { type AuditEvent, hashEvent } from "../../src/audit/chain.ts";

const db = env.AUDIT_DB;

type Row = Record<string, unknown>;

async function snapshot(): Promise<{ rows: Row[]; triggers: string[] }> {
  const { results: rows } = await db.prepare("SELECT * FROM audit_events ORDER BY seq").all<Row>();
  const { results: triggers } = await db
    .prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'")
    .all<{ sql: string }>();
  return { rows, triggers: triggers.map((t) => t.sql) };
}

async function restore(saved: { rows: Row[]; triggers: string[] }): Promise<void> {
  await dropTriggers();
  await db.prepare("DELETE FROM audit_events").run();
  const columns = Object.keys(saved.rows[0] ?? {});
  if (columns.length > 0) {
    const insert = db.prepare(
      `INSERT INTO audit_events (${columns.join(", ")}) VALUES (${columns.map((_, i) => `?${i + 1}`).join(", ")})`,
    );
    await db.batch(saved.rows.map((row) => insert.bind(...columns.map((c) => row[c]))));
  }
  for (const sql of saved.triggers) await db.prepare(sql).run();
}

async function dropTriggers(): Promise<void> {
  const { results } = await db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'")
    .all<{ name: string }>();
  for (const { name } of results) await db.prepare(`DROP TRIGGER ${name}`).run();
}

/** Runs `attack` with the triggers gone (as an attacker would drop them), then restores the log and triggers. */
export async function asAttacker<T>(attack: () => Promise<T>): Promise<T> {
  const saved = await snapshot();
  await dropTriggers();
  try {
    return await attack();
  } finally {
    await restore(saved);
  }
}

interface ChainRow extends AuditEvent {
  seq: number;
}

async function chainRows(proposalId: string): Promise<ChainRow[]> {
  const { results } = await db
    .prepare(
      "SELECT seq, proposal_id, idx, at_ms, type, actor, details, prev_hash, hash FROM audit_events WHERE proposal_id = ? ORDER BY idx",
    )
    .bind(proposalId)
    .all<Row>();
  return results.map((r) => ({
    seq: Number(r.seq),
    proposal_id: String(r.proposal_id),
    idx: Number(r.idx),
    at: new Date(Number(r.at_ms)).toISOString(),
    type: String(r.type),
    actor: String(r.actor),
    details: JSON.parse(String(r.details)) as Record<string, unknown>,
    prev_hash: String(r.prev_hash),
    hash: String(r.hash),
  }));
}

/**
 * Edits events of a chain and recomputes every hash from the first edited one on, so that the unkeyed chain
 * verifies again: the attack `npm run audit:verify` used to miss. Returns how many rows changed.
 */
export async function rewriteChain(proposalId: string, edit: (event: AuditEvent) => AuditEvent): Promise<number> {
  const rows = await chainRows(proposalId);
  let prev: string | null = null;
  let changed = 0;
  for (const row of rows) {
    const { seq, ...event } = row;
    const edited = edit(event);
    const unsealed = { ...edited, prev_hash: prev ?? edited.prev_hash };
    const hash = hashEvent(unsealed);
    if (hash !== row.hash) {
      await db
        .prepare("UPDATE audit_events SET actor = ?1, details = ?2, prev_hash = ?3, hash = ?4 WHERE seq = ?5")
        .bind(unsealed.actor, JSON.stringify(unsealed.details), unsealed.prev_hash, hash, seq)
        .run();
      changed++;
    }
    prev = hash;
  }
  return changed;
}

/** Deletes a chain's events from position `fromIdx` on (its tail). */
export async function cutChain(proposalId: string, fromIdx: number): Promise<void> {
  await db.prepare("DELETE FROM audit_events WHERE proposal_id = ? AND idx >= ?").bind(proposalId, fromIdx).run();
}

export async function deleteChain(proposalId: string): Promise<void> {
  await db.prepare("DELETE FROM audit_events WHERE proposal_id = ?").bind(proposalId).run();
}

export async function emptyLog(): Promise<void> {
  await db.prepare("DELETE FROM audit_events").run();
}
