// The proposal Durable Object's own SQLite tables: the proposal, its unflushed audit events
// (the outbox), queued outcome events, seen runner-result ids, issued signed links and the job
// table (read and written by src/proposal/scheduler.ts). One versioned schema for all of them.
// Synchronous, so a state change and the events that record it are written in one step.
import { type AuditEvent, GENESIS_HASH, sealEvent } from "../audit/chain.ts";
import type { ObjectChainHead } from "../audit/heads.ts";
import type { EventDraft } from "./lifecycle.ts";
import type { LinkChoice, Proposal } from "./types.ts";

const SCHEMA_VERSION = 4;

/**
 * Tables only some proposals need, made by the first statement that needs them rather than with every object: an
 * outcome-event queue (a callback_url), runner-result ids (a runner that answers later), signed links (link
 * deciders). Creating a table is rows written in SQLite's schema, billed like any other (npm run bench).
 */
const ON_DEMAND = {
  notifications: `CREATE TABLE IF NOT EXISTS notifications (
      seq INTEGER PRIMARY KEY,        -- queue order (rows are only removed from the front)
      type TEXT NOT NULL,             -- proposal.<status>
      body TEXT NOT NULL,             -- the outcome event as sent
      attempts INTEGER NOT NULL DEFAULT 0
    )`,
  seen_webhooks: `CREATE TABLE IF NOT EXISTS seen_webhooks (id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID`,
  // Signed links (issue 7): one row per recipient and choice; the nonce is in the token. Listed in issue order (rowid).
  links: `CREATE TABLE IF NOT EXISTS links (
      nonce TEXT PRIMARY KEY,
      recipient TEXT NOT NULL,
      choice TEXT NOT NULL,
      used_at INTEGER,                -- when it decided (Unix ms); a used link never decides again
      UNIQUE (recipient, choice)
    )`,
} as const;

/** The version an object's storage is at; 0 for a new object (no `meta` table yet). */
function schemaVersion(sql: SqlStorage): number {
  try {
    const row = sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'schema_version'`).toArray()[0];
    return row ? Number(row.value) : 0;
  } catch (error) {
    if (/no such table/.test((error as Error).message)) return 0;
    throw error;
  }
}

/** The on-demand tables this storage has (created or seen), so each is made at most once per instance. */
const made = new WeakMap<SqlStorage, Set<keyof typeof ON_DEMAND>>();

/** After a rolled-back transaction: a table it made is gone again, so the next use makes it anew. */
export function forgetOnDemandTables(sql: SqlStorage): void {
  made.delete(sql);
}

function need(sql: SqlStorage, table: keyof typeof ON_DEMAND): void {
  const tables = made.get(sql) ?? new Set();
  made.set(sql, tables);
  if (tables.has(table)) return;
  sql.exec(ON_DEMAND[table]);
  tables.add(table);
}

/**
 * Schema 4: the tables every proposal uses, keyed by text, are WITHOUT ROWID (one b-tree, so a row written is one
 * row, not a row and its key index), and the tables only some proposals use are made on demand. Objects from
 * schemas 1–3 keep their tables as they are (the same statements work on both layouts); they only note the version.
 */
export function migrate(sql: SqlStorage): void {
  const version = schemaVersion(sql);
  if (version >= SCHEMA_VERSION) return;
  if (version === 0) {
    sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID`);
    sql.exec(`CREATE TABLE IF NOT EXISTS proposal (
      id TEXT PRIMARY KEY,
      request_sha256 TEXT NOT NULL,   -- what created it, for Idempotency-Key replays
      record TEXT NOT NULL            -- the Proposal as JSON
    ) WITHOUT ROWID`);
    sql.exec(`CREATE TABLE IF NOT EXISTS outbox (
      idx INTEGER PRIMARY KEY,        -- position in the proposal's audit chain
      event TEXT NOT NULL             -- the sealed AuditEvent as JSON
    )`);
    // The jobs the alarm runs (src/proposal/scheduler.ts).
    sql.exec(`CREATE TABLE IF NOT EXISTS jobs (
      kind TEXT NOT NULL,             -- expire, audit, slack, dispatch, notify, teams, mail
      key TEXT NOT NULL,              -- which one of its kind (card, escalation, ephemeral:<user>, a mail's recipient, …)
      due_at INTEGER NOT NULL,        -- Unix ms
      attempt INTEGER NOT NULL DEFAULT 0,
      version INTEGER NOT NULL DEFAULT 1,
      lease_until INTEGER NOT NULL DEFAULT 0,
      payload TEXT,
      PRIMARY KEY (kind, key)
    ) WITHOUT ROWID`);
  } else {
    // Schemas 1–3 made every table up front; a schema 2 object may lack `jobs` if its scheduler never ran.
    sql.exec(`CREATE TABLE IF NOT EXISTS jobs (
      kind TEXT NOT NULL, key TEXT NOT NULL, due_at INTEGER NOT NULL, attempt INTEGER NOT NULL DEFAULT 0,
      version INTEGER NOT NULL DEFAULT 1, lease_until INTEGER NOT NULL DEFAULT 0, payload TEXT, PRIMARY KEY (kind, key)
    )`);
  }
  sql.exec(
    `INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    String(SCHEMA_VERSION),
  );
}

export function loadProposal(sql: SqlStorage): { proposal: Proposal; request_sha256: string } | null {
  const row = sql
    .exec<{ record: string; request_sha256: string }>(`SELECT record, request_sha256 FROM proposal`)
    .toArray()[0];
  return row
    ? { proposal: withDefaults(JSON.parse(row.record) as Proposal), request_sha256: row.request_sha256 }
    : null;
}

/**
 * Records stored before verification prompts, links and mailed links existed lack their fields: they are approvals
 * without any of them.
 */
function withDefaults(p: Proposal): Proposal {
  return {
    ...p,
    kind: p.kind ?? "approval",
    recipient: p.recipient ?? null,
    teams: p.teams ?? null,
    mail: p.mail ?? null,
  };
}

export function saveProposal(sql: SqlStorage, proposal: Proposal, requestSha256?: string): void {
  if (requestSha256 !== undefined) {
    sql.exec(
      `INSERT INTO proposal (id, request_sha256, record) VALUES (?, ?, ?)`,
      proposal.id,
      requestSha256,
      JSON.stringify(proposal),
    );
  } else {
    sql.exec(`UPDATE proposal SET record = ? WHERE id = ?`, JSON.stringify(proposal), proposal.id);
  }
}

/** Where the chain ends: the last event sealed (position 0 and the genesis hash before the first). */
export interface ChainEnd {
  idx: number;
  hash: string;
}

/** Numbers, chains and seals the drafts after `head`, the chain's end (nothing is written: see appendToOutbox). */
export function sealDrafts(
  proposalId: string,
  drafts: readonly EventDraft[],
  now: number,
  head: ChainEnd,
): AuditEvent[] {
  let idx = head.idx;
  let prev = head.hash;
  const at = new Date(now).toISOString();
  return drafts.map((draft) => {
    idx += 1;
    const event = sealEvent({
      proposal_id: proposalId,
      idx,
      at,
      type: draft.type,
      actor: draft.actor,
      details: draft.details,
      prev_hash: prev,
    });
    prev = event.hash;
    return event;
  });
}

/**
 * Queues sealed events for D1 as one outbox row: the events of one transaction, as a JSON array, keyed by the last
 * one's position (objects from before issue 12 also hold rows of one event each, as an object; both are read).
 */
export function appendToOutbox(sql: SqlStorage, sealed: readonly AuditEvent[]): void {
  const last = sealed.at(-1);
  if (last) sql.exec(`INSERT INTO outbox (idx, event) VALUES (?, ?)`, last.idx, JSON.stringify(sealed));
}

function eventsOfRow(text: string): AuditEvent[] {
  const row = JSON.parse(text) as AuditEvent | AuditEvent[];
  return Array.isArray(row) ? row : [row];
}

/**
 * Where the chain ends: the last event waiting in the outbox, else the last one D1 confirmed (`meta.chain_head`,
 * written only when a flush completes), else nothing yet.
 */
export function chainHead(sql: SqlStorage): ChainEnd {
  const row = sql.exec<{ event: string }>(`SELECT event FROM outbox ORDER BY idx DESC LIMIT 1`).toArray()[0];
  const last = row ? eventsOfRow(row.event).at(-1) : undefined;
  return last ? { idx: last.idx, hash: last.hash } : flushedHead(sql);
}

/** The last event D1 confirmed, as the last flush left it; before any, the genesis. */
function flushedHead(sql: SqlStorage): ChainEnd {
  const row = sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'chain_head'`).toArray()[0];
  return row ? (JSON.parse(row.value) as { idx: number; hash: string }) : { idx: 0, hash: GENESIS_HASH };
}

/** The chain as this object sealed it, for comparing with D1's (SPEC 12; src/audit/heads.ts). */
export function objectChainHead(sql: SqlStorage): ObjectChainHead {
  const pending = sql
    .exec<{ event: string }>(`SELECT event FROM outbox ORDER BY idx`)
    .toArray()
    .flatMap((row) => eventsOfRow(row.event));
  const first = pending[0];
  const last = pending.at(-1);
  const flushed = first ? { idx: first.idx - 1, hash: first.prev_hash } : flushedHead(sql);
  return {
    head: last ? { idx: last.idx, hash: last.hash } : flushed,
    flushed,
    pending: pending.map((e) => ({ idx: e.idx, hash: e.hash })),
  };
}

/**
 * The oldest unflushed events in chain order, whole rows only, at most `limit` of them (one row more when the first
 * row alone is longer), and whether more are waiting after them.
 */
export function outboxBatch(sql: SqlStorage, limit = 100): { events: AuditEvent[]; more: boolean } {
  const rows = sql.exec<{ event: string }>(`SELECT event FROM outbox ORDER BY idx LIMIT ?`, limit + 1).toArray();
  const events: AuditEvent[] = [];
  let taken = 0;
  for (const row of rows) {
    const more = eventsOfRow(row.event);
    if (taken > 0 && events.length + more.length > limit) break;
    events.push(...more);
    taken += 1;
  }
  return { events, more: taken < rows.length };
}

/** Forgets the events D1 has confirmed, up to and including `last`, which becomes the chain's confirmed end. */
export function dropFlushed(sql: SqlStorage, last: ChainEnd): void {
  sql.exec(`DELETE FROM outbox WHERE idx <= ?`, last.idx);
  sql.exec(
    `INSERT INTO meta (key, value) VALUES ('chain_head', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    JSON.stringify({ idx: last.idx, hash: last.hash }),
  );
}

export function queueNotification(sql: SqlStorage, type: string, body: string): void {
  need(sql, "notifications");
  sql.exec(`INSERT INTO notifications (type, body) VALUES (?, ?)`, type, body);
}

export type QueuedNotification = {
  seq: number;
  type: string;
  body: string;
  attempts: number;
};

export function nextNotification(sql: SqlStorage): QueuedNotification | null {
  need(sql, "notifications");
  return (
    sql
      .exec<QueuedNotification>(`SELECT seq, type, body, attempts FROM notifications ORDER BY seq LIMIT 1`)
      .toArray()[0] ?? null
  );
}

export function countNotificationAttempt(sql: SqlStorage, seq: number): void {
  need(sql, "notifications");
  sql.exec(`UPDATE notifications SET attempts = attempts + 1 WHERE seq = ?`, seq);
}

export function dropNotification(sql: SqlStorage, seq: number): void {
  need(sql, "notifications");
  sql.exec(`DELETE FROM notifications WHERE seq = ?`, seq);
}

/** When `user` was last sent an ephemeral reply about this proposal (Unix ms), or null. */
export function lastReplyAt(sql: SqlStorage, user: string): number | null {
  const row = sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = ?`, `reply:${user}`).toArray()[0];
  return row ? Number(row.value) : null;
}

/** Notes that `user` was sent an ephemeral reply at `at` (meta `reply:<user>`). */
export function noteReply(sql: SqlStorage, user: string, at: number): void {
  sql.exec(
    `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    `reply:${user}`,
    String(at),
  );
}

/** What the Slack Home index last took for this proposal (src/slack/home-index.ts homeIndexKey), or null. */
export function homeIndexWritten(sql: SqlStorage): string | null {
  return sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'home_index'`).toArray()[0]?.value ?? null;
}

/** Notes that D1 took the Home index rows for `key` (meta `home_index`). */
export function noteHomeIndexWritten(sql: SqlStorage, key: string): void {
  sql.exec(
    `INSERT INTO meta (key, value) VALUES ('home_index', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    key,
  );
}

/** Records a runner-result webhook id; false when it was seen before (a replay). */
export function markWebhookSeen(sql: SqlStorage, id: string, now: number): boolean {
  need(sql, "seen_webhooks");
  const inserted = sql.exec(`INSERT INTO seen_webhooks (id, at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`, id, now);
  return inserted.rowsWritten > 0;
}

export interface IssuedLink {
  recipient: string;
  choice: LinkChoice;
  nonce: string;
  used_at: number | null;
}

/** Records the links issued at creation (one per recipient and choice). */
export function issueLinks(
  sql: SqlStorage,
  links: ReadonlyArray<Pick<IssuedLink, "recipient" | "choice" | "nonce">>,
): void {
  if (links.length > 0) need(sql, "links");
  for (const link of links) {
    sql.exec(`INSERT INTO links (nonce, recipient, choice) VALUES (?, ?, ?)`, link.nonce, link.recipient, link.choice);
  }
}

export function listLinks(sql: SqlStorage): IssuedLink[] {
  need(sql, "links");
  return sql
    .exec<Record<keyof IssuedLink, SqlStorageValue>>(
      `SELECT nonce, recipient, choice, used_at FROM links ORDER BY rowid`,
    )
    .toArray()
    .map(toLink);
}

export function findLink(sql: SqlStorage, nonce: string): IssuedLink | null {
  need(sql, "links");
  const row = sql
    .exec<Record<keyof IssuedLink, SqlStorageValue>>(
      `SELECT nonce, recipient, choice, used_at FROM links WHERE nonce = ?`,
      nonce,
    )
    .toArray()[0];
  return row ? toLink(row) : null;
}

export function markLinkUsed(sql: SqlStorage, nonce: string, now: number): void {
  need(sql, "links");
  sql.exec(`UPDATE links SET used_at = ? WHERE nonce = ? AND used_at IS NULL`, now, nonce);
}

function toLink(row: Record<keyof IssuedLink, SqlStorageValue>): IssuedLink {
  return {
    nonce: String(row.nonce),
    recipient: String(row.recipient),
    choice: String(row.choice) as LinkChoice,
    used_at: row.used_at === null ? null : Number(row.used_at),
  };
}
