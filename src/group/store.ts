// The group object's tables (src/group/object.ts): its head, its cards, the members on each with the state they last
// reported, and the same job table a proposal's object runs its alarm from (src/proposal/scheduler.ts).

/** What every card of the group says it is of: the proposer's key, the action, the group_key. */
export interface GroupHead {
  keyName: string;
  action: string;
  groupKey: string;
}

export interface CardRow extends Record<string, SqlStorageValue> {
  n: number;
  channel: string;
  opened_at: number;
  /** The posted message's ts and channel; null until chat.postMessage answered. */
  ts: string | null;
  posted_channel: string | null;
  /** When the card was last sent (post or edit): edits wait GROUP_UPDATE_INTERVAL_MS after it. */
  sent_at: number;
}

export interface MemberRow extends Record<string, SqlStorageValue> {
  id: string;
  card: number;
  /** Joined order: the card lists its items so. */
  seq: number;
  /** The blocks the card reserves for it (group-card.ts `itemBlockCost`). */
  cost: number;
  status: string;
  /** The proposal as it last reported itself (JSON). */
  snapshot: string;
}

export function migrateGroup(sql: SqlStorage): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
  sql.exec(`CREATE TABLE IF NOT EXISTS cards (
    n INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    ts TEXT,
    posted_channel TEXT,
    sent_at INTEGER NOT NULL DEFAULT 0
  )`);
  sql.exec(`CREATE TABLE IF NOT EXISTS members (
    id TEXT PRIMARY KEY,
    card INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    cost INTEGER NOT NULL,
    status TEXT NOT NULL,
    snapshot TEXT NOT NULL
  )`);
  sql.exec(`CREATE INDEX IF NOT EXISTS members_card ON members (card, seq)`);
  sql.exec(`CREATE TABLE IF NOT EXISTS jobs (
    kind TEXT NOT NULL, key TEXT NOT NULL, due_at INTEGER NOT NULL, attempt INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 1, lease_until INTEGER NOT NULL DEFAULT 0, payload TEXT, PRIMARY KEY (kind, key)
  ) WITHOUT ROWID`);
}
