// Posting to a Teams incoming webhook / Workflows URL, with an answer that says what to do next (like the Slack client).
import { withDeadline } from "../lib/deadline.ts";
import { isRetryableStatus, retryAfterMs } from "../lib/retry.ts";

export const TEAMS_TIMEOUT_MS = 10_000;

/** Errors name a status code or the kind of failure only: never the URL (a credential) or a response body. */
export type TeamsPostResult =
  | { kind: "ok" }
  | { kind: "retry"; afterMs: number | null; error: string }
  | { kind: "failed"; error: string };

export function postToTeams(url: string, body: unknown, timeoutMs = TEAMS_TIMEOUT_MS): Promise<TeamsPostResult> {
  return withDeadline(timeoutMs, (signal) => postWithin(signal, url, body, timeoutMs));
}

async function postWithin(
  signal: AbortSignal,
  url: string,
  body: unknown,
  timeoutMs: number,
): Promise<TeamsPostResult> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      redirect: "manual",
      signal,
    });
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
    return { kind: "retry", afterMs: null, error: timedOut ? `timed out after ${timeoutMs} ms` : "network error" };
  }
  try {
    await res.body?.cancel();
  } catch {
    // the body is unwanted either way
  }
  if (res.status >= 200 && res.status < 300) return { kind: "ok" };
  if (isRetryableStatus(res.status)) {
    const error = `HTTP ${res.status}${res.status === 429 ? " rate limited" : ""}`;
    return { kind: "retry", afterMs: retryAfterMs(res.headers.get("retry-after")), error };
  }
  return { kind: "failed", error: `HTTP ${res.status}` };
}
