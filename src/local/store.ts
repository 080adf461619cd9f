// The local Slack stand-in's memory: one Durable Object (local mode only) that answers the Slack Web API
// methods signoff calls the way Slack would, and records what was posted, updated, whispered and opened.
import { DurableObject } from "cloudflare:workers";
import { DEMO_GROUPS } from "./demo.ts";

// The RPC methods take and return JSON text: the stub's mapped types of these free-form Slack shapes (`unknown`,
// or a recursive JSON type) are either `never` or too deep for the type checker.

/** Slack's answer to a Web API call: always HTTP 200, `ok` says whether it worked. */
export type SlackAnswer = ({ ok: true } & Record<string, unknown>) | { ok: false; error: string };
export type Params = Record<string, unknown>;

export interface StoredMessage {
  channel: string;
  ts: string;
  /** For a DM: the user it was opened with (chat.postMessage to a user id). */
  dm_user: string | null;
  posted_at: number;
  updated_at: number;
  /** 0 as posted, +1 per chat.update. */
  revision: number;
  text: string;
  blocks: unknown[];
}

export interface StoredEphemeral {
  id: number;
  at: number;
  channel: string;
  user: string;
  text: string;
  blocks: unknown[];
}

export interface StoredView {
  id: string;
  user: string;
  at: number;
  view: Record<string, unknown>;
  /** What the last view_submission answered with `response_action: "errors"`, by block id. */
  errors: Record<string, string> | null;
}

/** A user's Home tab as signoff last published it (views.publish). */
export interface StoredHome {
  id: string;
  user: string;
  at: number;
  view: Record<string, unknown>;
}

export interface Snapshot {
  messages: StoredMessage[];
  ephemerals: StoredEphemeral[];
  view: StoredView | null;
  /** The chosen person's Home tab, once signoff has drawn it. */
  home: StoredHome | null;
  calls: ApiCall[];
}

export interface ApiCall {
  at: number;
  method: string;
  ok: boolean;
  error: string | null;
}

/** Slack lets a trigger_id open one view within 3 seconds of the click. */
const TRIGGER_TTL_MS = 3_000;
const CALLS_KEPT = 100;
const CHANNEL_ID = /^[CGD][A-Z0-9]{2,}$/;
const USER_ID = /^[UW][A-Z0-9]{2,}$/;

export class LocalSlack extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS messages (
      channel TEXT NOT NULL, ts TEXT NOT NULL, dm_user TEXT,
      posted_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, revision INTEGER NOT NULL,
      text TEXT NOT NULL, blocks TEXT NOT NULL,
      PRIMARY KEY (channel, ts))`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS ephemerals (
      id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
      channel TEXT NOT NULL, user TEXT NOT NULL, text TEXT NOT NULL, blocks TEXT NOT NULL)`);
    this.sql.exec(
      `CREATE TABLE IF NOT EXISTS triggers (id TEXT PRIMARY KEY, user TEXT NOT NULL, at INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0)`,
    );
    this.sql.exec(`CREATE TABLE IF NOT EXISTS views (
      id TEXT PRIMARY KEY, user TEXT NOT NULL, at INTEGER NOT NULL, view TEXT NOT NULL,
      open INTEGER NOT NULL DEFAULT 1, errors TEXT)`);
    this.sql.exec(
      `CREATE TABLE IF NOT EXISTS homes (user TEXT PRIMARY KEY, id TEXT NOT NULL, at INTEGER NOT NULL, view TEXT NOT NULL)`,
    );
    this.sql.exec(`CREATE TABLE IF NOT EXISTS ts_counter (n INTEGER NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS calls (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, method TEXT NOT NULL, ok INTEGER NOT NULL, error TEXT)`);
  }

  /** One Web API call (arguments as JSON text), already authenticated by the Worker; Slack's answer as JSON text. */
  async api(method: string, paramsJson: string): Promise<string> {
    const params = JSON.parse(paramsJson) as Params;
    const answer = this.answer(method, params, Date.now());
    this.sql.exec(
      `INSERT INTO calls (at, method, ok, error) VALUES (?, ?, ?, ?)`,
      Date.now(),
      method,
      answer.ok ? 1 : 0,
      answer.ok ? null : answer.error,
    );
    this.sql.exec(`DELETE FROM calls WHERE seq <= (SELECT MAX(seq) FROM calls) - ?`, CALLS_KEPT);
    return JSON.stringify(answer);
  }

  /** A click is about to be sent for `user`: the trigger_id Slack would put in its payload. */
  async newTrigger(user: string): Promise<string> {
    const id = `${Date.now()}.${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;
    this.sql.exec(`INSERT INTO triggers (id, user, at) VALUES (?, ?, ?)`, id, user, Date.now());
    this.sql.exec(`DELETE FROM triggers WHERE at < ?`, Date.now() - 60_000);
    return id;
  }

  /** The StoredMessage as JSON text, or null. */
  async message(channel: string, ts: string): Promise<string | null> {
    const row = this.sql
      .exec<MessageRow>(`SELECT * FROM messages WHERE channel = ? AND ts = ?`, channel, ts)
      .toArray()[0];
    return row ? JSON.stringify(messageOf(row)) : null;
  }

  /** The open modal `id` as a StoredView in JSON text, if it belongs to `user`. */
  async view(id: string, user: string): Promise<string | null> {
    const row = this.sql
      .exec<ViewRow>(`SELECT * FROM views WHERE id = ? AND user = ? AND open = 1`, id, user)
      .toArray()[0];
    return row ? JSON.stringify(viewOf(row)) : null;
  }

  /** After a view_submission: close the modal, or keep it open showing Slack-style field errors. */
  async settleView(id: string, errors: Record<string, string> | null): Promise<void> {
    if (errors) this.sql.exec(`UPDATE views SET errors = ? WHERE id = ?`, JSON.stringify(errors), id);
    else this.sql.exec(`UPDATE views SET open = 0 WHERE id = ?`, id);
  }

  /** `user`'s Home tab as a StoredHome in JSON text, or null before signoff has published one. */
  async home(user: string): Promise<string | null> {
    const row = this.sql.exec<HomeRow>(`SELECT * FROM homes WHERE user = ?`, user).toArray()[0];
    return row ? JSON.stringify(homeOf(row)) : null;
  }

  async closeView(id: string, user: string): Promise<void> {
    this.sql.exec(`UPDATE views SET open = 0 WHERE id = ? AND user = ?`, id, user);
  }

  /** What `user` sees: every card (local mode shows DMs too, labelled), their own ephemerals and open modal. */
  /** A Snapshot as JSON text. */
  async snapshot(user: string): Promise<string> {
    const messages = this.sql
      .exec<MessageRow>(`SELECT * FROM messages ORDER BY posted_at, ts`)
      .toArray()
      .map(messageOf);
    const ephemerals = this.sql
      .exec<EphemeralRow>(`SELECT * FROM ephemerals WHERE user = ? ORDER BY id`, user)
      .toArray()
      .map((row) => ({ ...row, blocks: JSON.parse(row.blocks) as unknown[] }));
    const view = this.sql
      .exec<ViewRow>(`SELECT * FROM views WHERE user = ? AND open = 1 ORDER BY at DESC LIMIT 1`, user)
      .toArray()[0];
    const calls = this.sql
      .exec<{ at: number; method: string; ok: number; error: string | null }>(
        `SELECT at, method, ok, error FROM calls ORDER BY seq DESC LIMIT 20`,
      )
      .toArray()
      .map((c) => ({ ...c, ok: c.ok === 1 }));
    const home = this.sql.exec<HomeRow>(`SELECT * FROM homes WHERE user = ?`, user).toArray()[0];
    return JSON.stringify({
      messages,
      ephemerals,
      view: view ? viewOf(view) : null,
      home: home ? homeOf(home) : null,
      calls,
    } satisfies Snapshot);
  }

  /** Forget everything shown (proposals and the audit log are signoff's, and stay). */
  async clear(): Promise<void> {
    for (const table of ["messages", "ephemerals", "triggers", "views", "homes", "calls"])
      this.sql.exec(`DELETE FROM ${table}`);
  }

  // ---- the Web API methods signoff uses, answered as Slack documents them ----

  private answer(method: string, p: Params, now: number): SlackAnswer {
    switch (method) {
      case "chat.postMessage": {
        const target = str(p.channel);
        if (!target) return { ok: false, error: "channel_not_found" };
        const text = str(p.text);
        const blocks = Array.isArray(p.blocks) ? p.blocks : [];
        if (!text && blocks.length === 0) return { ok: false, error: "no_text" };
        // Posting to a user id opens (or reuses) the DM with them; Slack answers with the DM's D… id.
        const dmUser = USER_ID.test(target) ? target : null;
        const channel = dmUser ? `D${dmUser.slice(1)}` : target;
        if (!CHANNEL_ID.test(channel)) return { ok: false, error: "channel_not_found" };
        const ts = this.nextTs(now);
        this.sql.exec(
          `INSERT INTO messages (channel, ts, dm_user, posted_at, updated_at, revision, text, blocks) VALUES (?, ?, ?, ?, ?, 0, ?, ?)`,
          channel,
          ts,
          dmUser,
          now,
          now,
          text,
          JSON.stringify(blocks),
        );
        return { ok: true, channel, ts, message: { type: "message", ts, text, blocks } };
      }
      case "chat.update": {
        const channel = str(p.channel);
        const ts = str(p.ts);
        const exists =
          this.sql.exec(`SELECT 1 FROM messages WHERE channel = ? AND ts = ?`, channel, ts).toArray().length > 0;
        if (!exists) return { ok: false, error: "message_not_found" };
        const text = str(p.text);
        const blocks = Array.isArray(p.blocks) ? p.blocks : [];
        this.sql.exec(
          `UPDATE messages SET text = ?, blocks = ?, updated_at = ?, revision = revision + 1 WHERE channel = ? AND ts = ?`,
          text,
          JSON.stringify(blocks),
          now,
          channel,
          ts,
        );
        return { ok: true, channel, ts, text };
      }
      case "chat.postEphemeral": {
        const channel = str(p.channel);
        const user = str(p.user);
        if (!CHANNEL_ID.test(channel)) return { ok: false, error: "channel_not_found" };
        if (!USER_ID.test(user)) return { ok: false, error: "user_not_found" };
        const blocks = Array.isArray(p.blocks) ? p.blocks : [];
        this.sql.exec(
          `INSERT INTO ephemerals (at, channel, user, text, blocks) VALUES (?, ?, ?, ?, ?)`,
          now,
          channel,
          user,
          str(p.text),
          JSON.stringify(blocks),
        );
        return { ok: true, message_ts: this.nextTs(now) };
      }
      case "views.open": {
        const trigger = this.sql
          .exec<{ user: string; at: number; used: number }>(
            `SELECT user, at, used FROM triggers WHERE id = ?`,
            str(p.trigger_id),
          )
          .toArray()[0];
        if (!trigger) return { ok: false, error: "invalid_trigger_id" };
        if (trigger.used === 1 || now - trigger.at > TRIGGER_TTL_MS) return { ok: false, error: "expired_trigger_id" };
        const view = typeof p.view === "string" ? safeJson(p.view) : p.view;
        if (!isRecord(view) || view.type !== "modal") return { ok: false, error: "invalid_arguments" };
        const id = `V${crypto.randomUUID().replaceAll("-", "").slice(0, 10).toUpperCase()}`;
        this.sql.exec(`UPDATE triggers SET used = 1 WHERE id = ?`, str(p.trigger_id));
        // One modal at a time per person, as on a screen.
        this.sql.exec(`UPDATE views SET open = 0 WHERE user = ?`, trigger.user);
        this.sql.exec(
          `INSERT INTO views (id, user, at, view) VALUES (?, ?, ?, ?)`,
          id,
          trigger.user,
          now,
          JSON.stringify(view),
        );
        return { ok: true, view: { id, ...view } };
      }
      case "views.publish": {
        // The Home tab: one view per user, replaced by each publish.
        const user = str(p.user_id);
        if (!USER_ID.test(user)) return { ok: false, error: "user_not_found" };
        const view = typeof p.view === "string" ? safeJson(p.view) : p.view;
        if (!isRecord(view) || view.type !== "home") return { ok: false, error: "invalid_arguments" };
        const id = `V${crypto.randomUUID().replaceAll("-", "").slice(0, 10).toUpperCase()}`;
        this.sql.exec(
          `INSERT INTO homes (user, id, at, view) VALUES (?, ?, ?, ?)
           ON CONFLICT (user) DO UPDATE SET id = excluded.id, at = excluded.at, view = excluded.view`,
          user,
          id,
          now,
          JSON.stringify(view),
        );
        return { ok: true, view: { id, ...view } };
      }
      case "users.info": {
        // Everyone in the demo is a full member of the one local workspace.
        return { ok: true, user: { id: str(p.user), team_id: "T0LOCAL" } };
      }
      case "usergroups.users.list": {
        const users = DEMO_GROUPS[str(p.usergroup)];
        return users ? { ok: true, users: [...users] } : { ok: false, error: "no_such_subteam" };
      }
      default:
        return { ok: false, error: "unknown_method" };
    }
  }

  /** Message timestamps as Slack writes them (`seconds.micro`), unique per workspace. */
  private nextTs(now: number): string {
    const row = this.sql.exec<{ n: number }>(`SELECT n FROM ts_counter`).toArray()[0];
    const n = (row?.n ?? 0) + 1;
    if (row) this.sql.exec(`UPDATE ts_counter SET n = ?`, n);
    else this.sql.exec(`INSERT INTO ts_counter (n) VALUES (?)`, n);
    return `${Math.floor(now / 1000)}.${String(n % 1_000_000).padStart(6, "0")}`;
  }
}

type MessageRow = Omit<StoredMessage, "blocks"> & { blocks: string };
type EphemeralRow = Omit<StoredEphemeral, "blocks"> & { blocks: string };
type HomeRow = { user: string; id: string; at: number; view: string };
type ViewRow = { id: string; user: string; at: number; view: string; open: number; errors: string | null };

function messageOf(row: MessageRow): StoredMessage {
  return { ...row, blocks: JSON.parse(row.blocks) as unknown[] };
}

function homeOf(row: HomeRow): StoredHome {
  return { id: row.id, user: row.user, at: row.at, view: JSON.parse(row.view) as Record<string, unknown> };
}

function viewOf(row: ViewRow): StoredView {
  return {
    id: row.id,
    user: row.user,
    at: row.at,
    view: JSON.parse(row.view) as Record<string, unknown>,
    errors: row.errors ? (JSON.parse(row.errors) as Record<string, string>) : null,
  };
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
