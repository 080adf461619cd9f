// The Durable Object's job table: one platform alarm serves many jobs (expiry, audit flush,
// Slack sync, dispatch, outcome events, Teams messages, mails with approval links, reminders,
// the automatic escalation). Jobs are
// rows; the alarm is re-armed to the earliest due row and deleted when none is left (the
// pattern of cloudflare/agents).

export interface Job {
  kind: JobKind;
  key: string;
  due_at: number;
  /** Failed runs so far, for backoff. */
  attempt: number;
  /** Bumped on every (re)schedule, so finishing an old run never drops a newer request. */
  version: number;
  /** While a run is under way (its I/O in flight), no other run may take the job. */
  lease_until: number;
  payload: string | null;
}

export const JOB_KINDS = [
  "expire",
  "audit",
  "slack",
  "dispatch",
  "notify",
  "teams",
  "mail",
  // issue 16: reminders at fractions of the TTL (one per fraction), and the automatic escalation
  "remind",
  "escalate",
] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** Which jobs a claim takes: one kind or several, all but one, and at most how many. */
export interface ClaimFilter {
  only?: JobKind | readonly JobKind[];
  except?: JobKind;
  limit?: number;
}

export class JobTable {
  /** The earliest due time asked for since `takeScheduled()` last looked (null: nothing asked for). */
  #scheduled: number | null = null;
  /** How many times schedule() or reschedule() were called on this instance: a run compares it to see if anything new was asked for. */
  asked = 0;

  /** Wraps the `jobs` table that migrate() (src/proposal/store.ts) creates with the rest of the schema. */
  constructor(private readonly sql: SqlStorage) {}

  /**
   * The earliest due time that schedule() or reschedule() asked for since the last call, then forgets it. The
   * object re-arms its alarm only when this is earlier than the alarm (no nextWake() query after every change).
   */
  takeScheduled(): number | null {
    const at = this.#scheduled;
    this.#scheduled = null;
    return at;
  }

  #asked(dueAt: number): void {
    this.asked += 1;
    if (this.#scheduled === null || dueAt < this.#scheduled) this.#scheduled = dueAt;
  }

  /**
   * Asks for a run at `dueAt`. An existing job keeps its attempt count and any lease (a
   * run under way finishes first), moves to the earlier of the two due times, and gets a
   * new version so that run will not delete it.
   */
  schedule(kind: JobKind, key: string, dueAt: number, payload: string | null = null): void {
    this.sql.exec(
      `INSERT INTO jobs (kind, key, due_at, payload) VALUES (?, ?, ?, ?)
       ON CONFLICT (kind, key) DO UPDATE SET
         due_at = MIN(due_at, excluded.due_at),
         version = version + 1,
         payload = COALESCE(excluded.payload, payload)`,
      kind,
      key,
      dueAt,
      payload,
    );
    this.#asked(dueAt);
  }

  /**
   * Schedules a job due at `now` and takes it at once for the caller, leased until `leaseUntil`, in one statement: the
   * row is the durable fallback (an alarm run takes it over once the lease ends, should the caller never finish) and
   * the lease keeps every alarm run off it meanwhile. Null, with the job scheduled as schedule() would, when a run
   * already holds it.
   */
  hold(kind: JobKind, key: string, now: number, leaseUntil: number): Job | null {
    const held = this.sql.exec<{ lease_until: number }>(
      `SELECT lease_until FROM jobs WHERE kind = ? AND key = ?`,
      kind,
      key,
    );
    if (held.toArray().some((row) => Number(row.lease_until) > now)) {
      this.schedule(kind, key, now);
      return null;
    }
    const [row] = this.sql
      .exec<Record<keyof Job, SqlStorageValue>>(
        `INSERT INTO jobs (kind, key, due_at, lease_until) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (kind, key) DO UPDATE SET
           due_at = MIN(due_at, excluded.due_at), version = version + 1, lease_until = excluded.lease_until
         RETURNING *`,
        kind,
        key,
        now,
        leaseUntil,
      )
      .toArray();
    this.#asked(now);
    return toJob(row!);
  }

  /**
   * The run of `job` is done and the job comes back as `key`, due at `dueAt`, with no failed attempt (a reminder moving
   * on to its next fraction): one row updated instead of one deleted and one inserted. A row already there under
   * `key` is replaced; nothing happens when the job was cancelled while it ran.
   */
  rearm(job: Job, key: string, dueAt: number): void {
    this.sql.exec(
      `UPDATE OR REPLACE jobs SET key = ?, due_at = ?, attempt = 0, lease_until = 0, version = version + 1
       WHERE kind = ? AND key = ?`,
      key,
      dueAt,
      job.kind,
      job.key,
    );
    this.#asked(dueAt);
  }

  /** Moves a job to exactly `dueAt` (later or earlier), as an expiry extension needs. */
  reschedule(kind: JobKind, key: string, dueAt: number): void {
    this.sql.exec(`UPDATE jobs SET due_at = ?, version = version + 1 WHERE kind = ? AND key = ?`, dueAt, kind, key);
    this.#asked(dueAt);
  }

  /**
   * Jobs due at `now` that no run holds (earliest first, at most `filter.limit`); each is leased until
   * `now + leaseMs(kind)` before return, in the same statement that finds it.
   */
  claimDue(now: number, leaseMs: (kind: JobKind) => number, filter: ClaimFilter = {}): Job[] {
    const only = filter.only === undefined ? JOB_KINDS : typeof filter.only === "string" ? [filter.only] : filter.only;
    const kinds = only.filter((kind) => kind !== filter.except);
    if (kinds.length === 0 || filter.limit === 0) return [];
    const leases = JSON.stringify(Object.fromEntries(kinds.map((kind) => [kind, leaseMs(kind)])));
    return this.sql
      .exec<Record<keyof Job, SqlStorageValue>>(
        `UPDATE jobs SET lease_until = ?1 + json_extract(?2, '$.' || kind)
         WHERE (kind, key) IN (
           SELECT kind, key FROM jobs
           WHERE due_at <= ?1 AND lease_until <= ?1 AND kind IN (SELECT value FROM json_each(?3))
           ORDER BY due_at, kind, key LIMIT ?4)
         RETURNING *`,
        now,
        leases,
        JSON.stringify(kinds),
        filter.limit ?? -1,
      )
      .toArray()
      .map(toJob)
      .sort(byDue);
  }

  /** Whether a job (of these kinds) is due at `now` and free to run. */
  hasDue(now: number, kinds: readonly JobKind[] = JOB_KINDS): boolean {
    return (
      this.sql
        .exec(
          `SELECT 1 FROM jobs WHERE due_at <= ?1 AND lease_until <= ?1 AND kind IN (SELECT value FROM json_each(?2)) LIMIT 1`,
          now,
          JSON.stringify(kinds),
        )
        .toArray().length > 0
    );
  }

  /** The run of `job` is done: remove it unless it was scheduled again meanwhile. */
  complete(job: Job): void {
    const removed = this.sql.exec(
      `DELETE FROM jobs WHERE kind = ? AND key = ? AND version = ?`,
      job.kind,
      job.key,
      job.version,
    );
    if (removed.rowsWritten === 0)
      this.sql.exec(`UPDATE jobs SET lease_until = 0 WHERE kind = ? AND key = ?`, job.kind, job.key);
  }

  /** The run failed: try again at `dueAt` (unless re-scheduled sooner meanwhile). */
  retry(job: Job, dueAt: number): void {
    this.sql.exec(
      `UPDATE jobs SET attempt = attempt + 1, lease_until = 0,
         due_at = CASE WHEN version = ? THEN ? ELSE MIN(due_at, ?) END
       WHERE kind = ? AND key = ?`,
      job.version,
      dueAt,
      dueAt,
      job.kind,
      job.key,
    );
  }

  /**
   * Makes every job of `kind` due at once, as if its time had come. Attempt, lease and version
   * stay: nothing new was asked for, so a run under way that completes still removes the job.
   * For tests that must not wait out a backoff or a Retry-After.
   */
  makeDue(kind: JobKind): void {
    this.sql.exec(`UPDATE jobs SET due_at = 0 WHERE kind = ?`, kind);
  }

  cancel(kind: JobKind, key: string): void {
    this.sql.exec(`DELETE FROM jobs WHERE kind = ? AND key = ?`, kind, key);
  }

  /** Removes every job of `kind` (reminders once nothing is left to decide). */
  cancelKind(kind: JobKind): void {
    this.sql.exec(`DELETE FROM jobs WHERE kind = ?`, kind);
  }

  has(kind: JobKind, key: string): boolean {
    return this.sql.exec(`SELECT 1 FROM jobs WHERE kind = ? AND key = ?`, kind, key).toArray().length > 0;
  }

  /** When the alarm should next fire: the earliest due job, or its lease end if it is held. */
  nextWake(): number | null {
    const row = this.sql.exec<{ wake: number | null }>(`SELECT MIN(MAX(due_at, lease_until)) AS wake FROM jobs`).one();
    return row.wake ?? null;
  }

  list(): Job[] {
    return this.sql.exec<Record<keyof Job, SqlStorageValue>>(`SELECT * FROM jobs ORDER BY due_at`).toArray().map(toJob);
  }
}

function byDue(a: Job, b: Job): number {
  return (
    a.due_at - b.due_at ||
    (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0) ||
    (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  );
}

function toJob(row: Record<keyof Job, SqlStorageValue>): Job {
  return {
    kind: row.kind as JobKind,
    key: String(row.key),
    due_at: Number(row.due_at),
    attempt: Number(row.attempt),
    version: Number(row.version),
    lease_until: Number(row.lease_until),
    payload: row.payload === null ? null : String(row.payload),
  };
}

/** Exponential backoff: `base * 2^(attempt-1)`, capped, with ±10 % jitter so retries spread. */
export function backoffMs(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  const raw = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.min(capMs, Math.round(raw * (0.9 + random() * 0.2)));
}

/** Runner dispatches and, "retried like dispatches", outcome events (SPEC 6, 7): from 2 s, capped at 5 min. */
export const WEBHOOK_BACKOFF = { baseMs: 2_000, capMs: 300_000 } as const;

/** Messages (Slack, Teams, mail): the peer's Retry-After when it gave one, else backoff from 1 s to 5 min. */
export function messageRetryDelayMs(retryAfterMs: number | null, attempt: number): number {
  return retryAfterMs ?? backoffMs(attempt, 1_000, 300_000);
}
