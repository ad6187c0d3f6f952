// Token-bucket arithmetic: refill stops at capacity, a take is all or nothing, a charge can run
// into debt, and msUntil is the exact first millisecond that passes, whatever the rate's rounding.
import { describe, expect, it } from 'vitest';
import { bucketRate, charge, fullBucket, isFull, msUntil, refill, tryTake, type TokenBucket } from './token-bucket.js';

const perMinute = (limit: number) => bucketRate(limit, 60_000);

describe('token bucket', () => {
  it('refills by the elapsed time and never above capacity', () => {
    const rate = perMinute(60);
    const empty: TokenBucket = { tokens: 0, updatedAt: 1000 };
    expect(refill(empty, rate, 1500).tokens).toBeCloseTo(0.5, 12);
    expect(refill(empty, rate, 1000 + 10 * 60_000).tokens).toBe(60);
    // A clock that went back adds nothing and does not move updatedAt back.
    expect(refill(empty, rate, 0)).toEqual(empty);
  });

  it('takes the cost only when the balance holds it, and leaves the state alone otherwise', () => {
    const rate = perMinute(2);
    const taken = tryTake(fullBucket(rate, 0), rate, 1, 0);
    expect(taken).toEqual({ tokens: 1, updatedAt: 0 });
    const second = tryTake(taken ?? fullBucket(rate, 0), rate, 1, 0);
    expect(second?.tokens).toBe(0);
    expect(tryTake(second ?? fullBucket(rate, 0), rate, 1, 0)).toBeUndefined();
  });

  it('charges into debt, which refill pays back before the bucket passes again', () => {
    const rate = perMinute(60_000); // 1 token per ms
    const indebted = charge(fullBucket(rate, 0), rate, 100_000, 0);
    expect(indebted.tokens).toBe(-40_000);
    expect(msUntil(indebted, rate, 0, 0, true)).toBe(40_001);
    expect(refill(indebted, rate, 40_000).tokens).toBe(0);
    expect(isFull(indebted, rate, 99_999)).toBe(false);
    expect(isFull(indebted, rate, 100_000)).toBe(true);
  });

  it('msUntil is 0 when already there and Infinity when it never will be', () => {
    const rate = perMinute(10);
    expect(msUntil(fullBucket(rate, 0), rate, 1, 0)).toBe(0);
    expect(msUntil(fullBucket(rate, 0), rate, 11, 0)).toBe(Infinity);
    expect(msUntil({ tokens: 0, updatedAt: 0 }, perMinute(0), 1, 0)).toBe(Infinity);
  });

  it.each([1, 3, 7, 60, 61, 97, 1000, 12_345, 100_000])(
    'msUntil(%i per minute) is the first whole millisecond at which the check passes',
    (limit) => {
      const rate = perMinute(limit);
      // Awkward starting balances: after a take, in debt, fractional.
      const starts: TokenBucket[] = [
        { tokens: 0, updatedAt: 5 },
        { tokens: 0.3, updatedAt: 5 },
        { tokens: -limit * 1.7, updatedAt: 5 },
        { tokens: limit - 1.0001, updatedAt: 5 },
      ];
      for (const start of starts) {
        for (const [amount, strict] of [[1, false], [0, true]] as const) {
          const now = 17;
          const ms = msUntil(start, rate, amount, now, strict);
          const passes = (at: number) => {
            const balance = refill(start, rate, at).tokens;
            return strict ? balance > amount : balance >= amount;
          };
          expect(passes(now + ms)).toBe(true);
          if (ms > 0) expect(passes(now + ms - 1)).toBe(false);
          // What a caller told to wait `ms` sees: tryTake passes exactly then.
          if (!strict) expect(tryTake(start, rate, amount, now + ms)).toBeDefined();
        }
      }
    },
  );
});
