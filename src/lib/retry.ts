// One rule for every outbound HTTP call (Slack, Teams, the runner, outcome events): which answers are worth trying
// again, and how long the peer asked us to wait before we do.

/**
 * A peer that timed out (408), asked us to slow down (429) or failed on its side (5xx) may well answer later; any
 * other answer is final (SPEC 5, 6, 7).
 */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** `Retry-After` (seconds, or an HTTP date) in milliseconds; null when absent or unreadable (use your backoff). */
export function retryAfterMs(header: string | null, nowMs: number = Date.now()): number | null {
  if (header === null) return null;
  const text = header.trim();
  if (/^[0-9]+$/.test(text)) return Number(text) * 1000;
  if (!/[a-zA-Z]/.test(text)) return null; // an HTTP date names its day and month
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}
