// Reconnection delays: exponential backoff with full jitter (a uniformly random delay between 0
// and the exponential cap), so that many clients dropped at once by a restart do not come back
// in step. See "Exponential Backoff And Jitter", AWS Architecture Blog, 2015.

/** How the client retries dropped streams; every field has a default. */
export interface RetryOptions {
  /** Reconnections in a row without progress before giving up. Default 5; Infinity never gives up. */
  maxAttempts?: number;
  /** The cap of the first delay, in ms. Default 250. */
  baseDelayMs?: number;
  /** The largest cap, in ms. Default 5000. */
  maxDelayMs?: number;
}

export interface ResolvedRetry {
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const retryDefaults: ResolvedRetry = Object.freeze({ maxAttempts: 5, baseDelayMs: 250, maxDelayMs: 5000 });

/** Fills in defaults; throws a TypeError naming the field for a negative or non-numeric value. */
export function resolveRetry(options: RetryOptions | undefined): ResolvedRetry {
  const resolved = { ...retryDefaults, ...options };
  for (const [name, value] of Object.entries(resolved)) {
    if (typeof value !== 'number' || Number.isNaN(value) || value < 0) throw new TypeError(`retry.${name} must be a number ≥ 0, not ${String(value)}.`);
  }
  return Object.freeze(resolved);
}

/**
 * The delay (ms) before reconnection `attempt` (1 for the first): uniform in
 * [0, min(maxDelayMs, baseDelayMs · 2^(attempt-1))). `random` is in [0, 1); default Math.random.
 */
export function backoffDelayMs(attempt: number, retry: ResolvedRetry, random: () => number = Math.random): number {
  const cap = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * cap);
}

/** Resolves after `ms`, or at once when `signal` aborts (it never rejects: the caller checks the signal). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}
