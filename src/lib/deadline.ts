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

/** Waits for `work` at most `ms` (it goes on regardless), then clears the timer: true when it ended in time. */
export async function waitAtMost(ms: number, work: Promise<unknown>): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
