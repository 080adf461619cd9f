// A small Slack Web API client whose answer says what to do next: use the data, retry (when), or give up (SPEC 5).
import { withDeadline } from "../lib/deadline.ts";
import { isRetryableStatus, retryAfterMs } from "../lib/retry.ts";

export const SLACK_TIMEOUT_MS = 10_000;

export type SlackData = { ok: true } & Record<string, unknown>;

/**
 * `retry.afterMs` is Slack's `Retry-After` in milliseconds, or null for "use your backoff".
 * `error` strings name a status code or Slack's error code only: never the token, never a body.
 */
export type SlackCallResult =
  | { kind: "ok"; data: SlackData }
  | { kind: "retry"; afterMs: number | null; error: string }
  | { kind: "failed"; error: string };

// These methods refuse JSON bodies ("This method does not currently accept application/json"),
// so they get a form-encoded POST; everything else (chat.*, views.*) gets JSON.
// https://docs.slack.dev/reference/methods/usergroups.users.list
const FORM_METHODS: ReadonlySet<string> = new Set([
  "usergroups.users.list",
  "usergroups.list",
  "users.info",
  "users.lookupByEmail",
  "conversations.info",
  "conversations.members",
  "auth.test",
]);

// `ok:false` codes that mean "Slack had a moment", worth retrying; every other code is final.
// https://docs.slack.dev/apis/web-api/#errors
const TRANSIENT_ERRORS: ReadonlySet<string> = new Set([
  "ratelimited",
  "internal_error",
  "fatal_error",
  "service_unavailable",
  "request_timeout",
]);

// Only a well-formed Slack error code is ever repeated in an error string, so a hostile or
// broken peer cannot smuggle text (or an echoed token) into logs and the audit trail.
const ERROR_CODE = /^[a-z0-9_]{1,64}$/;

/**
 * Calls `method` on the Slack Web API at `base` (SPEC 3 `SLACK_API_BASE`) with the bot token
 * in the Authorization header, and classifies the answer. Never throws.
 */
export function callSlack(
  base: string,
  token: string,
  method: string,
  body: Record<string, unknown>,
  fetchImpl: typeof fetch = fetch,
  timeoutMs: number = SLACK_TIMEOUT_MS,
): Promise<SlackCallResult> {
  return withDeadline(timeoutMs, (signal) => callSlackWithin(signal, base, token, method, body, fetchImpl, timeoutMs));
}

async function callSlackWithin(
  signal: AbortSignal,
  base: string,
  token: string,
  method: string,
  body: Record<string, unknown>,
  fetchImpl: typeof fetch,
  timeoutMs: number,
): Promise<SlackCallResult> {
  if (!/^[a-zA-Z][a-zA-Z0-9]*(\.[a-zA-Z0-9]+)+$/.test(method))
    return { kind: "failed", error: "not a Slack method name" };
  const url = `${base.replace(/\/+$/, "")}/${method}`;
  const form = FORM_METHODS.has(method);
  let res: Response;
  try {
    res = await fetchImpl(url, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": form ? "application/x-www-form-urlencoded" : "application/json; charset=utf-8",
      },
      body: form ? formEncode(body) : JSON.stringify(body),
      signal,
    });
  } catch (error) {
    return { kind: "retry", afterMs: null, error: `${method}: ${networkFailure(error, timeoutMs)}` };
  }

  if (isRetryableStatus(res.status)) {
    await discard(res);
    return {
      kind: "retry",
      afterMs: retryAfterMs(res.headers.get("retry-after")),
      error: `${method}: HTTP ${res.status}${res.status === 429 ? " rate limited" : ""}`,
    };
  }

  let payload: unknown;
  try {
    payload = await res.json();
  } catch (error) {
    if (res.status >= 400) return { kind: "failed", error: `${method}: HTTP ${res.status}` };
    // The body timing out mid-read is a network failure; a 2xx that is not JSON is not Slack.
    if (isAbort(error))
      return { kind: "retry", afterMs: null, error: `${method}: ${networkFailure(error, timeoutMs)}` };
    return { kind: "failed", error: `${method}: HTTP ${res.status} with a body that is not Slack's JSON` };
  }

  const record = isRecord(payload) ? payload : {};
  const code = typeof record.error === "string" && ERROR_CODE.test(record.error) ? record.error : null;
  if (res.status >= 400) {
    return { kind: "failed", error: `${method}: HTTP ${res.status}${code ? ` ${code}` : ""}` };
  }
  if (record.ok === true) return { kind: "ok", data: { ...record, ok: true } };
  if (code && TRANSIENT_ERRORS.has(code)) {
    return { kind: "retry", afterMs: retryAfterMs(res.headers.get("retry-after")), error: `${method}: ${code}` };
  }
  return { kind: "failed", error: `${method}: ${code ?? "ok:false without an error code"}` };
}

function formEncode(body: Record<string, unknown>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(body)) {
    if (value === undefined || value === null) continue;
    params.set(name, typeof value === "object" ? JSON.stringify(value) : String(value));
  }
  return params.toString();
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
}

// Only the error's class goes into the message: runtime messages can quote the URL or headers.
function networkFailure(error: unknown, timeoutMs: number): string {
  if (isAbort(error)) return `timed out after ${timeoutMs} ms`;
  return `network error (${error instanceof Error ? error.name : "unknown"})`;
}

async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // Nothing to do: the body is unwanted either way.
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
