// A time limit for outbound I/O whose timer is cleared when the work ends: an uncleared
// AbortSignal.timeout() keeps a Durable Object from being evicted until it fires.

/** Runs `work` with a signal that aborts (as a TimeoutError) after `ms`, then clears the timer. */
export async function withDeadline<T>(ms: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`timed out after ${ms} ms`, "TimeoutError")), ms);
  try {
    return await work(controller.signal);
  } finally {
    clearTimeout(timer);
  }
}
