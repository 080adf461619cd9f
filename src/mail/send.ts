// Sending mail through an HTTPS mail API (Resend's request shape, which several providers and relays accept):
// one POST per message, with an answer that says whether to retry. Errors name a status or the kind of failure,
// never the token or a response body.
import { withDeadline } from "../lib/deadline.ts";
import { isRetryableStatus, retryAfterMs } from "../lib/retry.ts";

export interface MailConfig {
  /** POST endpoint, e.g. `https://api.resend.com/emails`. */
  url: string;
  /** Bearer token for the mail API (a secret). */
  token: string;
  /** The sender: `signoff <signoff@example.com>`. */
  from: string;
}

export interface Mail {
  to: string;
  subject: string;
  text: string;
  html: string;
}

export type MailResult =
  | { kind: "ok" }
  | { kind: "retry"; afterMs: number | null; error: string }
  | { kind: "failed"; error: string };

export const MAIL_TIMEOUT_MS = 10_000;

export interface SendOptions {
  /**
   * Sent as `Idempotency-Key`: the same key again is not a second message (Resend keeps keys for 24 h; an API that
   * ignores the header still gets one request per attempt). For a retry after an answer that never arrived.
   */
  idempotencyKey?: string;
  timeoutMs?: number;
}

export function sendMail(config: MailConfig, mail: Mail, options: SendOptions = {}): Promise<MailResult> {
  const timeoutMs = options.timeoutMs ?? MAIL_TIMEOUT_MS;
  const headers: Record<string, string> = {
    "content-type": "application/json",
    authorization: `Bearer ${config.token}`,
  };
  if (options.idempotencyKey !== undefined) headers["idempotency-key"] = options.idempotencyKey;
  return withDeadline(timeoutMs, async (signal) => {
    let res: Response;
    try {
      res = await fetch(config.url, {
        method: "POST",
        headers,
        body: JSON.stringify({
          from: config.from,
          to: [mail.to],
          subject: mail.subject,
          text: mail.text,
          html: mail.html,
        }),
        redirect: "manual",
        signal,
      });
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      return { kind: "retry", afterMs: null, error: timedOut ? `timed out after ${timeoutMs} ms` : "network error" };
    }
    await res.body?.cancel().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) return { kind: "ok" };
    if (!isRetryableStatus(res.status)) return { kind: "failed", error: `HTTP ${res.status}` };
    return { kind: "retry", afterMs: retryAfterMs(res.headers.get("retry-after")), error: `HTTP ${res.status}` };
  });
}
