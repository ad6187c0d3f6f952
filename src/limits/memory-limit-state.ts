// The LimitState of one process: counters in three Maps. Every method runs to completion without
// awaiting, so on Node's single thread each call is indivisible, which is all the atomicity the
// contract asks for. Memory stays bounded by what is live: a bucket that has refilled to full, a
// concurrency counter back at 0 and a quota counter of a past period carry no information (their
// absence means the same), so they are dropped: a concurrency key's lease set at once, the others by a
// sweep that starts every minute and is spread over the calls that follow.
import { concurrencyRetryAfterMs, type AdmitResult, type LimitCheck, type LimitState, type QuotaCheck, type RateCheck } from './limit-state.js';
import { bucketRate, charge, fullBucket, isFull, msUntil, tryTake, type BucketRate, type TokenBucket } from './token-bucket.js';

interface StoredBucket extends TokenBucket {
  /** Kept with the state so a sweep can tell a full bucket without the check. */
  readonly rate: BucketRate;
}

interface StoredQuota {
  readonly usedTokens: number;
  readonly periodEnd: number;
}

export interface MemoryLimitStateOptions {
  /**
   * How often, in ms of the clock passed to the methods, a sweep pass starts. Default 60 000.
   */
  readonly sweepEveryMs?: number;
  /**
   * Entries a pass examines per method call, default 1000. A pass walks every entry; done in one
   * go it stalled the event loop for about 1 s at a million users (2 million entries, measured on
   * a shared 2-core machine), so it is spread over the calls that follow, each paying about
   * 0.1 ms (median) for its batch. Entries added during a pass are walked by it too.
   */
  readonly sweepBatchSize?: number;
}

/** Entry counts, for tests and metrics. */
export interface MemoryLimitStateSize {
  readonly buckets: number;
  readonly concurrency: number;
  readonly quotas: number;
}

export interface MemoryLimitState extends LimitState {
  /**
   * Drops, in one go, full buckets and quota counters whose period ended (a concurrency counter
   * is dropped as soon as it is back at 0). The methods already do this a batch at a time; this
   * is for tests and for a shutdown-free idle moment.
   */
  sweep(now: number): void;
  size(): MemoryLimitStateSize;
}

/** A LimitState in this process's memory: the default for a single node. */
export function createMemoryLimitState(options: MemoryLimitStateOptions = {}): MemoryLimitState {
  const sweepEveryMs = options.sweepEveryMs ?? 60_000;
  const sweepBatchSize = options.sweepBatchSize ?? 1000;
  if (!(sweepEveryMs > 0)) throw new RangeError(`sweepEveryMs must be a positive number of ms, got ${String(sweepEveryMs)}.`);
  if (!(sweepBatchSize >= 1)) throw new RangeError(`sweepBatchSize must be at least 1, got ${String(sweepBatchSize)}.`);

  const buckets = new Map<string, StoredBucket>();
  /**
   * The lease ids holding slots, per key; never empty (a set back at 0 is deleted at once). Ids
   * rather than a count so that a settle frees only what its own admission took (limit-state.ts).
   */
  const concurrency = new Map<string, Set<string>>();
  const quotas = new Map<string, StoredQuota>();
  let lastSweepAt: number | undefined;
  /** The pass under way, and the clock of the call now advancing it. */
  let pass: Generator<undefined, void, undefined> | undefined;
  let sweepNow = 0;

  /** One step per entry. Deleting the entry being visited is safe while iterating a Map. */
  function* sweepPass(): Generator<undefined, void, undefined> {
    for (const [key, bucket] of buckets) {
      if (isFull(bucket, bucket.rate, sweepNow)) buckets.delete(key);
      yield;
    }
    for (const [key, quota] of quotas) {
      if (sweepNow >= quota.periodEnd) quotas.delete(key);
      yield;
    }
  }

  function sweep(now: number): void {
    lastSweepAt = now;
    sweepNow = now;
    pass = undefined;
    const walk = sweepPass();
    while (walk.next().done !== true) {
      // Each step examined one entry; keep going to the end.
    }
  }

  function sweepIfDue(now: number): void {
    sweepNow = now;
    if (pass === undefined) {
      if (lastSweepAt === undefined) lastSweepAt = now;
      if (now - lastSweepAt < sweepEveryMs) return;
      lastSweepAt = now;
      pass = sweepPass();
    }
    for (let step = 0; step < sweepBatchSize; step += 1) {
      if (pass.next().done === true) {
        pass = undefined;
        return;
      }
    }
  }

  function bucketOf(check: RateCheck, now: number): { bucket: TokenBucket; rate: BucketRate } {
    const rate = bucketRate(check.limit, check.periodMs);
    return { bucket: buckets.get(check.key) ?? fullBucket(rate, now), rate };
  }

  /** How long until `check` passes, or undefined when it passes now. Reads only. */
  function waitFor(check: LimitCheck, now: number): number | undefined {
    switch (check.kind) {
      case 'requests':
      case 'tokens': {
        const { bucket, rate } = bucketOf(check, now);
        // Requests need a whole token; tokens per minute only need the balance out of debt.
        const ms = check.kind === 'requests' ? msUntil(bucket, rate, 1, now) : msUntil(bucket, rate, 0, now, true);
        if (ms === 0) return undefined;
        return Number.isFinite(ms) ? ms : check.periodMs;
      }
      case 'concurrency':
        return (concurrency.get(check.key)?.size ?? 0) < check.limit ? undefined : concurrencyRetryAfterMs;
      case 'quota': {
        const usedTokens = quotas.get(check.key)?.usedTokens ?? 0;
        return usedTokens < check.limit ? undefined : Math.max(0, check.periodEnd - now);
      }
    }
  }

  function quotaAbsent(check: QuotaCheck, now: number): boolean {
    const stored = quotas.get(check.key);
    // A counter of a period that has ended but not yet been swept is as good as absent.
    return stored === undefined || now >= stored.periodEnd;
  }

  return {
    async admit(checks: readonly LimitCheck[], now: number, leaseId: string): Promise<AdmitResult> {
      sweepIfDue(now);
      const missing = checks.filter((check): check is QuotaCheck => check.kind === 'quota' && quotaAbsent(check, now));
      if (missing.length > 0) return { outcome: 'needs-seed', quotas: missing };

      let failed: LimitCheck | undefined;
      let retryAfterMs = -1;
      for (const check of checks) {
        const ms = waitFor(check, now);
        if (ms !== undefined && ms > retryAfterMs) {
          failed = check;
          retryAfterMs = ms;
        }
      }
      if (failed !== undefined) return { outcome: 'refused', failed, retryAfterMs };

      // Everything passed and nothing awaited since the checks: taking cannot fail now.
      for (const check of checks) {
        if (check.kind === 'requests') {
          const { bucket, rate } = bucketOf(check, now);
          const taken = tryTake(bucket, rate, 1, now);
          if (taken !== undefined) buckets.set(check.key, { ...taken, rate });
        } else if (check.kind === 'concurrency') {
          const leases = concurrency.get(check.key);
          if (leases === undefined) concurrency.set(check.key, new Set([leaseId]));
          else leases.add(leaseId);
        }
      }
      return { outcome: 'admitted' };
    },

    async seed(quota: QuotaCheck, usedTokens: number, now: number): Promise<void> {
      sweepIfDue(now);
      if (!quotaAbsent(quota, now)) return;
      quotas.set(quota.key, { usedTokens: Math.max(0, usedTokens), periodEnd: quota.periodEnd });
    },

    async settle(checks: readonly LimitCheck[], tokens: number, now: number, leaseId: string): Promise<void> {
      sweepIfDue(now);
      const amount = Number.isFinite(tokens) ? Math.max(0, tokens) : 0;
      for (const check of checks) {
        switch (check.kind) {
          case 'requests':
            break;
          case 'tokens': {
            const { bucket, rate } = bucketOf(check, now);
            buckets.set(check.key, { ...charge(bucket, rate, amount, now), rate });
            break;
          }
          case 'concurrency': {
            const leases = concurrency.get(check.key);
            leases?.delete(leaseId);
            if (leases?.size === 0) concurrency.delete(check.key);
            break;
          }
          case 'quota': {
            const stored = quotaAbsent(check, now) ? undefined : quotas.get(check.key);
            quotas.set(check.key, { usedTokens: (stored?.usedTokens ?? 0) + amount, periodEnd: check.periodEnd });
            break;
          }
        }
      }
    },

    sweep,

    size(): MemoryLimitStateSize {
      return { buckets: buckets.size, concurrency: concurrency.size, quotas: quotas.size };
    },
  };
}
