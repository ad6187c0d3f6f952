// Token-bucket arithmetic, pure: plain state in, new state out, no clock and no storage. Both
// per-minute limits are buckets: requests per minute N is capacity N refilled N per 60 000 ms,
// one token taken per request; tokens per minute T is capacity T refilled T per 60 000 ms, a
// request admitted while the balance is above 0 and its tokens charged when it ends (so the
// balance may go negative: a big answer leaves the bucket in debt until refill pays it back).
// The memory LimitState calls these directly; a Redis script repeats the same few lines in Lua.

/** A bucket's balance at one instant. Missing state means a full bucket. */
export interface TokenBucket {
  /** The balance; below 0 after `charge` ran it into debt. */
  readonly tokens: number;
  /** When `tokens` was true, in ms since the epoch. */
  readonly updatedAt: number;
}

/** How a bucket fills. */
export interface BucketRate {
  /** The most the bucket holds, in tokens. */
  readonly capacity: number;
  /** Tokens added per millisecond, up to `capacity`. */
  readonly refillPerMs: number;
}

/** The rate of a limit of `limit` per `periodMs` (a per-minute limit: `periodMs` 60 000). */
export function bucketRate(limit: number, periodMs: number): BucketRate {
  return { capacity: limit, refillPerMs: periodMs > 0 ? limit / periodMs : 0 };
}

/** A full bucket at `now` (what an absent bucket is). */
export function fullBucket(rate: BucketRate, now: number): TokenBucket {
  return { tokens: rate.capacity, updatedAt: now };
}

/**
 * The balance `now` would show, computed from the stored state alone. A clock that went back
 * adds nothing rather than taking tokens away.
 */
function balanceAt(bucket: TokenBucket, rate: BucketRate, now: number): number {
  const elapsedMs = Math.max(0, now - bucket.updatedAt);
  return Math.min(rate.capacity, bucket.tokens + elapsedMs * rate.refillPerMs);
}

/** The bucket brought up to `now`: refilled for the time elapsed, never above capacity. */
export function refill(bucket: TokenBucket, rate: BucketRate, now: number): TokenBucket {
  return { tokens: balanceAt(bucket, rate, now), updatedAt: Math.max(now, bucket.updatedAt) };
}

/**
 * Takes `cost` tokens if the refilled balance holds them.
 * @returns the new state, or undefined (nothing taken) when the balance is short.
 */
export function tryTake(bucket: TokenBucket, rate: BucketRate, cost: number, now: number): TokenBucket | undefined {
  const refilled = refill(bucket, rate, now);
  if (refilled.tokens < cost) return undefined;
  return { tokens: refilled.tokens - cost, updatedAt: refilled.updatedAt };
}

/** Takes `cost` tokens unconditionally; the balance may go negative (debt). */
export function charge(bucket: TokenBucket, rate: BucketRate, cost: number, now: number): TokenBucket {
  const refilled = refill(bucket, rate, now);
  return { tokens: refilled.tokens - cost, updatedAt: refilled.updatedAt };
}

/** True when the stored state, refilled to `now`, is already full (so it may be forgotten). */
export function isFull(bucket: TokenBucket, rate: BucketRate, now: number): boolean {
  return balanceAt(bucket, rate, now) >= rate.capacity;
}

/**
 * Whole milliseconds from `now` until the balance is at least `amount` (`strict`: above it).
 * The estimate is checked against the same arithmetic `refill` uses, so a caller told to wait
 * this long and coming back exactly then passes, and 1 ms earlier would not: floating-point
 * rounding of the refill rate (60/60 000 is not exact in binary) cannot make the hint a lie.
 * @returns 0 when already there; Infinity when it never will be (amount above capacity, or a
 *   rate of 0).
 */
export function msUntil(bucket: TokenBucket, rate: BucketRate, amount: number, now: number, strict = false): number {
  const reached = (ms: number): boolean => {
    const balance = balanceAt(bucket, rate, now + ms);
    return strict ? balance > amount : balance >= amount;
  };
  if (reached(0)) return 0;
  if (rate.refillPerMs <= 0 || (strict ? rate.capacity <= amount : rate.capacity < amount)) return Infinity;
  const base = Math.max(now, bucket.updatedAt) - now;
  const fromBalance = balanceAt(bucket, rate, now + base);
  let ms = Math.max(1, base + Math.ceil((amount - fromBalance) / rate.refillPerMs));
  // The estimate is off by at most a step or two; walk to the exact first passing millisecond.
  while (!reached(ms)) ms += 1;
  while (ms > 1 && reached(ms - 1)) ms -= 1;
  return ms;
}
