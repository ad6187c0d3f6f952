// Reconnection delays grow exponentially up to a cap, with full jitter so clients dropped together
// do not return together; bad retry options are refused by name; sleep ends early on abort.
import { describe, expect, it } from 'vitest';
import { backoffDelayMs, resolveRetry, retryDefaults, sleep } from './backoff.js';

describe('backoff', () => {
  it('caps double per attempt up to maxDelayMs, and the delay is uniform below the cap', () => {
    const retry = resolveRetry({ baseDelayMs: 100, maxDelayMs: 1000 });
    const justBelowOne = 0.999_999;
    expect([1, 2, 3, 4, 5, 6].map((attempt) => backoffDelayMs(attempt, retry, () => justBelowOne))).toEqual([99, 199, 399, 799, 999, 999]);
    expect(backoffDelayMs(3, retry, () => 0)).toBe(0);
    expect(backoffDelayMs(3, retry, () => 0.5)).toBe(200);
  });

  it('spreads clients that reconnect at the same attempt', () => {
    const delays = new Set(Array.from({ length: 200 }, () => backoffDelayMs(4, retryDefaults)));
    expect(delays.size).toBeGreaterThan(100);
    for (const delay of delays) expect(delay).toBeLessThan(2000);
  });

  it('fills defaults and names a bad field', () => {
    expect(resolveRetry(undefined)).toEqual({ maxAttempts: 5, baseDelayMs: 250, maxDelayMs: 5000 });
    expect(resolveRetry({ maxAttempts: Infinity }).maxAttempts).toBe(Infinity);
    expect(() => resolveRetry({ baseDelayMs: -1 })).toThrow(/retry\.baseDelayMs must be a number ≥ 0/);
    expect(() => resolveRetry({ maxAttempts: Number.NaN })).toThrow(/retry\.maxAttempts/);
  });

  it('sleep resolves at once when aborted, and never rejects', async () => {
    const controller = new AbortController();
    const startedAt = performance.now();
    const waiting = sleep(10_000, controller.signal);
    controller.abort();
    await waiting;
    expect(performance.now() - startedAt).toBeLessThan(100);
    await sleep(10_000, controller.signal);
  });
});
