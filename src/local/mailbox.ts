// Local mode's mail catcher (issue 11): the mail API signoff sends approval links through (MAIL_API_URL points at
// the local entry), answered like the real one and kept here, one Durable Object that exists only in local mode,
// so that the stand-in page can show each demo person the mail delivered to them.
import { DurableObject } from "cloudflare:workers";

/** One message as the mail API received it (src/mail/send.ts: `{from, to: [addr], subject, text, html}`). */
export interface CaughtMail {
  id: string;
  at: number;
  from: string;
  to: string[];
  subject: string;
  text: string;
  html: string;
}

export type MailInput = Omit<CaughtMail, "id" | "at">;

/** How many messages are kept: a demo's worth, never a growing database. */
const MAIL_KEPT = 500;
/** A mailbox shows at most this many, newest first. */
const MAILBOX_SIZE = 50;
/** What one message may carry, like a mail API's own limit (Resend's is 40 MB with attachments; this has none). */
const MAX_RECIPIENTS = 50;
const MAX_TEXT = 256 * 1024;

/** The request body of the mail API, checked as a mail API checks it; a message saying what is wrong otherwise. */
export function parseMailInput(body: unknown): { ok: true; mail: MailInput } | { ok: false; message: string } {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    return { ok: false, message: "send a JSON object" };
  const b = body as Record<string, unknown>;
  const to = typeof b.to === "string" ? [b.to] : b.to;
  if (typeof b.from !== "string" || !b.from.includes("@"))
    return { ok: false, message: "`from` must be a sender address" };
  if (!Array.isArray(to) || to.length === 0 || to.length > MAX_RECIPIENTS)
    return { ok: false, message: `\`to\` must list 1 to ${MAX_RECIPIENTS} addresses` };
  if (!to.every((a): a is string => typeof a === "string" && /^[^\s@]+@[^\s@]+$/.test(a)))
    return { ok: false, message: "every `to` must be an e-mail address" };
  if (typeof b.subject !== "string" || b.subject === "") return { ok: false, message: "`subject` is required" };
  const text = b.text ?? "";
  const html = b.html ?? "";
  if (typeof text !== "string" || typeof html !== "string")
    return { ok: false, message: "`text` and `html` must be strings" };
  if (text === "" && html === "") return { ok: false, message: "give `text` or `html`" };
  if (text.length > MAX_TEXT || html.length > MAX_TEXT) return { ok: false, message: "the message is too large" };
  return { ok: true, mail: { from: b.from, to, subject: b.subject, text, html } };
}

export class LocalMail extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS mail (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, at INTEGER NOT NULL,
      sender TEXT NOT NULL, recipients TEXT NOT NULL, subject TEXT NOT NULL, text TEXT NOT NULL, html TEXT NOT NULL)`);
  }

  /** Keeps one message (already checked by parseMailInput, as JSON text); its id, as the mail API answers it. */
  async deliver(mailJson: string): Promise<string> {
    const mail = JSON.parse(mailJson) as MailInput;
    const id = crypto.randomUUID();
    this.#sql.exec(
      `INSERT INTO mail (id, at, sender, recipients, subject, text, html) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      id,
      Date.now(),
      mail.from,
      JSON.stringify(mail.to.map((a) => a.toLowerCase())),
      mail.subject,
      mail.text,
      mail.html,
    );
    this.#sql.exec(`DELETE FROM mail WHERE seq <= (SELECT MAX(seq) FROM mail) - ?`, MAIL_KEPT);
    return id;
  }

  /** The newest messages delivered to `address`, and how many there are in all, as JSON text. */
  async mailbox(address: string): Promise<string> {
    const rows = this.#sql
      .exec<MailRow>(
        `SELECT id, at, sender, recipients, subject, text, html FROM mail
         WHERE EXISTS (SELECT 1 FROM json_each(mail.recipients) WHERE value = ?) ORDER BY seq DESC LIMIT ?`,
        address.toLowerCase(),
        MAILBOX_SIZE,
      )
      .toArray();
    const total = this.#sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM mail`).one().n;
    const mail: CaughtMail[] = rows.map((row) => ({
      id: row.id,
      at: row.at,
      from: row.sender,
      to: JSON.parse(row.recipients) as string[],
      subject: row.subject,
      text: row.text,
      html: row.html,
    }));
    return JSON.stringify({ mail, total });
  }

  async clear(): Promise<void> {
    this.#sql.exec(`DELETE FROM mail`);
  }
}

type MailRow = {
  id: string;
  at: number;
  sender: string;
  recipients: string;
  subject: string;
  text: string;
  html: string;
};
