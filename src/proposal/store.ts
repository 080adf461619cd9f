// The proposal Durable Object's own SQLite tables: the proposal, its unflushed audit events
// (the outbox), queued outcome events, seen runner-result ids, issued signed links and the job
// table (read and written by src/proposal/scheduler.ts). One versioned schema for all of them.
// Synchronous, so a state change and the events that record it are written in one step.
import { type AuditEvent, GENESIS_HASH, sealEvent } from "../audit/chain.ts";
import type { ObjectChainHead } from "../audit/heads.ts";
import type { EventDraft } from "./lifecycle.ts";
import type { LinkChoice, Proposal } from "./types.ts";

const SCHEMA_VERSION = 3;

export function migrate(sql: SqlStorage): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
  const row = sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'schema_version'`).toArray()[0];
  const version = row ? Number(row.value) : 0;
  if (version < 1) {
    sql.exec(`CREATE TABLE IF NOT EXISTS proposal (
      id TEXT PRIMARY KEY,
      request_sha256 TEXT NOT NULL,   -- what created it, for Idempotency-Key replays
      record TEXT NOT NULL            -- the Proposal as JSON
    )`);
    sql.exec(`CREATE TABLE IF NOT EXISTS outbox (
      idx INTEGER PRIMARY KEY,        -- position in the proposal's audit chain
      event TEXT NOT NULL             -- the sealed AuditEvent as JSON
    )`);
    sql.exec(`CREATE TABLE IF NOT EXISTS notifications (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      type TEXT NOT NULL,             -- proposal.<status>
      body TEXT NOT NULL,             -- the outcome event as sent
      attempts INTEGER NOT NULL DEFAULT 0
    )`);
    sql.exec(`CREATE TABLE IF NOT EXISTS seen_webhooks (id TEXT PRIMARY KEY, at INTEGER NOT NULL)`);
  }
  if (version < 2) {
    // Signed links (issue 7): one row per recipient and choice; the nonce is in the token.
    sql.exec(`CREATE TABLE IF NOT EXISTS links (
      nonce TEXT PRIMARY KEY,
      recipient TEXT NOT NULL,
      choice TEXT NOT NULL,
      used_at INTEGER,                -- when it decided (Unix ms); a used link never decides again
      UNIQUE (recipient, choice)
    )`);
  }
  if (version < 3) {
    // The jobs the alarm runs (src/proposal/scheduler.ts). Objects older than version 3 have the
    // table already, made by JobTable's constructor before the schema had one path: kept as is.
    sql.exec(`CREATE TABLE IF NOT EXISTS jobs (
      kind TEXT NOT NULL,             -- expire, audit, slack, dispatch, notify, teams, mail
      key TEXT NOT NULL,              -- which one of its kind (card, escalation, ephemeral:<uuid>, a mail's recipient, …)
      due_at INTEGER NOT NULL,        -- Unix ms
      attempt INTEGER NOT NULL DEFAULT 0,
      version INTEGER NOT NULL DEFAULT 1,
      lease_until INTEGER NOT NULL DEFAULT 0,
      payload TEXT,
      PRIMARY KEY (kind, key)
    )`);
  }
  // Only when it changed: every start of the object runs this, and an unconditional write made each one a commit.
  if (version < SCHEMA_VERSION) {
    sql.exec(
      `INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      String(SCHEMA_VERSION),
    );
  }
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

/**
 * Numbers, chains and seals the drafts after the last event, then queues them for D1. `head` is the chain's end
 * when the caller knows it (the object remembers it between steps); otherwise it is read from `meta`.
 */
export function appendToOutbox(
  sql: SqlStorage,
  proposalId: string,
  drafts: readonly EventDraft[],
  now: number,
  head: ChainEnd = chainHead(sql),
): AuditEvent[] {
  let idx = head.idx;
  let prev = head.hash;
  const at = new Date(now).toISOString();
  const sealed: AuditEvent[] = [];
  for (const draft of drafts) {
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
    sql.exec(`INSERT INTO outbox (idx, event) VALUES (?, ?)`, idx, JSON.stringify(event));
    prev = event.hash;
    sealed.push(event);
  }
  if (sealed.length > 0) setChainHead(sql, idx, prev);
  return sealed;
}

export function chainHead(sql: SqlStorage): ChainEnd {
  const row = sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'chain_head'`).toArray()[0];
  return row ? (JSON.parse(row.value) as { idx: number; hash: string }) : { idx: 0, hash: GENESIS_HASH };
}

function setChainHead(sql: SqlStorage, idx: number, hash: string): void {
  sql.exec(
    `INSERT INTO meta (key, value) VALUES ('chain_head', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    JSON.stringify({ idx, hash }),
  );
}

/** The chain as this object sealed it, for comparing with D1's (SPEC 12; src/audit/heads.ts). */
export function objectChainHead(sql: SqlStorage): ObjectChainHead {
  const head = chainHead(sql);
  const pending = sql
    .exec<{ event: string }>(`SELECT event FROM outbox ORDER BY idx`)
    .toArray()
    .map((row) => JSON.parse(row.event) as AuditEvent);
  const first = pending[0];
  return {
    head,
    flushed: first ? { idx: first.idx - 1, hash: first.prev_hash } : head,
    pending: pending.map((e) => ({ idx: e.idx, hash: e.hash })),
  };
}

/** Unflushed events in chain order. */
export function outboxEvents(sql: SqlStorage, limit = 100): AuditEvent[] {
  return sql
    .exec<{ event: string }>(`SELECT event FROM outbox ORDER BY idx LIMIT ?`, limit)
    .toArray()
    .map((row) => JSON.parse(row.event) as AuditEvent);
}

/** Forgets events D1 has confirmed (up to and including `idx`). */
export function dropFlushed(sql: SqlStorage, idx: number): void {
  sql.exec(`DELETE FROM outbox WHERE idx <= ?`, idx);
}

export function outboxSize(sql: SqlStorage): number {
  return sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM outbox`).one().n;
}

export function queueNotification(sql: SqlStorage, type: string, body: string): void {
  sql.exec(`INSERT INTO notifications (type, body) VALUES (?, ?)`, type, body);
}

export type QueuedNotification = {
  seq: number;
  type: string;
  body: string;
  attempts: number;
};

export function nextNotification(sql: SqlStorage): QueuedNotification | null {
  return (
    sql
      .exec<QueuedNotification>(`SELECT seq, type, body, attempts FROM notifications ORDER BY seq LIMIT 1`)
      .toArray()[0] ?? null
  );
}

export function countNotificationAttempt(sql: SqlStorage, seq: number): void {
  sql.exec(`UPDATE notifications SET attempts = attempts + 1 WHERE seq = ?`, seq);
}

export function dropNotification(sql: SqlStorage, seq: number): void {
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
  for (const link of links) {
    sql.exec(`INSERT INTO links (nonce, recipient, choice) VALUES (?, ?, ?)`, link.nonce, link.recipient, link.choice);
  }
}

export function listLinks(sql: SqlStorage): IssuedLink[] {
  return sql
    .exec<Record<keyof IssuedLink, SqlStorageValue>>(
      `SELECT nonce, recipient, choice, used_at FROM links ORDER BY rowid`,
    )
    .toArray()
    .map(toLink);
}

export function findLink(sql: SqlStorage, nonce: string): IssuedLink | null {
  const row = sql
    .exec<Record<keyof IssuedLink, SqlStorageValue>>(
      `SELECT nonce, recipient, choice, used_at FROM links WHERE nonce = ?`,
      nonce,
    )
    .toArray()[0];
  return row ? toLink(row) : null;
}

export function markLinkUsed(sql: SqlStorage, nonce: string, now: number): void {
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
