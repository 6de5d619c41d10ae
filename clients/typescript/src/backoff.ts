/** Exponential back-off with full jitter. */
export interface BackoffOptions {
  /** The first delay's ceiling, ms (default 1000). */
  initialMs?: number;
  /** The largest delay, ms (default 60000). */
  maxMs?: number;
}

/**
 * The delay before retry number `attempt` (0-based): a uniform draw in
 * `[ceiling/2, ceiling]`, ceiling = `min(maxMs, initialMs * 2^attempt)`; never less than the
 * server's `Retry-After` (seconds) when it sent one.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  retryAfterSeconds?: number,
  random: () => number = Math.random,
): number {
  const initial = options.initialMs ?? 1000;
  const max = options.maxMs ?? 60_000;
  const ceiling = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  const jittered = ceiling / 2 + random() * (ceiling / 2);
  const floor = retryAfterSeconds !== undefined ? retryAfterSeconds * 1000 : 0;
  return Math.max(Math.round(jittered), floor);
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
