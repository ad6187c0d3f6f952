// What only the memory LimitState promises (the contract every state keeps is tested in
// limit-state-contract.test.ts): memory stays bounded, since counters that carry no information
// (full buckets, idle slots, past periods) are swept while live ones survive the sweep, and a
// refusal stores nothing at all.
import { describe, expect, it } from 'vitest';
import { createLimiter } from './create-limiter.js';
import type { LimitCheck, QuotaCheck, RateCheck } from './limit-state.js';
import { createMemoryLimitState } from './memory-limit-state.js';

const noon = Date.UTC(2026, 11, 1, 12);

const rpm = (key: string, limit: number): RateCheck => ({ kind: 'requests', key, limit, label: 'key.requestsPerMinute', periodMs: 60_000 });
const tpm = (key: string, limit: number): RateCheck => ({ kind: 'tokens', key, limit, label: 'key.tokensPerMinute', periodMs: 60_000 });
const streams = (key: string, limit: number): LimitCheck => ({ kind: 'concurrency', key, limit, label: 'key.concurrentStreams' });
const daily = (key: string, limit: number): QuotaCheck => ({
  kind: 'quota',
  key,
  limit,
  label: 'user.dailyTokens',
  periodStart: Date.UTC(2026, 11, 1),
  periodEnd: Date.UTC(2026, 11, 2),
});

describe('memory limit state', () => {
  it('a refusal or a request for a seed stores nothing', async () => {
    const state = createMemoryLimitState();
    expect(await state.admit([rpm('b:rpm', 1)], noon, 'lease-1')).toEqual({ outcome: 'admitted' });
    expect(await state.admit([rpm('a:rpm', 1), streams('a:streams', 1), rpm('b:rpm', 1)], noon, 'lease-2')).toMatchObject({ outcome: 'refused' });
    expect(await state.admit([rpm('a:rpm', 1), streams('a:streams', 1), daily('a:day', 100)], noon, 'lease-3')).toMatchObject({ outcome: 'needs-seed' });
    expect(state.size()).toEqual({ buckets: 1, concurrency: 0, quotas: 0 });
  });
});

describe('memory stays bounded', () => {
  it('100 000 users touched, then time passes: the sweep leaves only what is still live', async () => {
    let time = noon;
    const state = createMemoryLimitState({ sweepEveryMs: 60_000, sweepBatchSize: 1000 });
    const limiter = createLimiter({ state, now: () => time, seedQuota: async () => 0 });
    const userLimits = { requestsPerMinute: 10, tokensPerMinute: 10_000, concurrentStreams: 2, dailyTokens: 1_000_000, monthlyTokens: 10_000_000 };
    for (let index = 0; index < 100_000; index += 1) {
      const admission = await limiter.admit({ userId: `user-${index}`, userLimits, keyLimits: {} });
      await admission.settle(50);
    }
    // Request and token buckets, day and month counters; every slot was released at once.
    expect(state.size()).toEqual({ buckets: 200_000, concurrency: 0, quotas: 200_000 });
    const streaming = await limiter.admit({ userId: 'streaming', userLimits, keyLimits: {} });

    // The next day, traffic goes on: one user with no quota, whose calls carry the sweep along.
    time = Date.UTC(2026, 11, 2, 0, 1);
    const later = { userId: 'later', userLimits: { concurrentStreams: 1 }, keyLimits: {} };
    await (await limiter.admit(later)).settle(0);
    const total = () => {
      const { buckets, concurrency, quotas } = state.size();
      return buckets + concurrency + quotas;
    };
    // One call paid for one batch of the pass, not the whole of it.
    expect(total()).toBeGreaterThanOrEqual(400_000 - 2 * 1000);
    for (let index = 0; index < 500; index += 1) await (await limiter.admit(later)).settle(0);
    // Left: this month's counters (dropping them would reset monthly quotas) and the open stream's
    // slot. The buckets had refilled to full and the day's counters belong to a past day.
    expect(state.size()).toEqual({ buckets: 0, concurrency: 1, quotas: 100_001 });

    await streaming.settle(0);
    time = Date.UTC(2027, 0, 1, 0, 1);
    for (let index = 0; index < 500; index += 1) await (await limiter.admit(later)).settle(0);
    expect(state.size()).toEqual({ buckets: 0, concurrency: 0, quotas: 0 });
  });

  it('a sweep keeps what still matters: a bucket in debt, a held slot, a current quota', async () => {
    const state = createMemoryLimitState({ sweepEveryMs: 1000 });
    await state.admit([streams('a:streams', 1)], noon, 'lease-1');
    await state.seed(daily('a:day', 100), 100, noon);
    await state.settle([tpm('a:tpm', 60)], 600, noon, 'lease-2'); // 540 in debt: 10 minutes to full
    state.sweep(noon + 5 * 60_000);
    expect(state.size()).toEqual({ buckets: 1, concurrency: 1, quotas: 1 });
    expect(await state.admit([streams('a:streams', 1)], noon + 5 * 60_000, 'lease-3')).toMatchObject({ outcome: 'refused' });
    expect(await state.admit([daily('a:day', 100)], noon + 5 * 60_000, 'lease-4')).toMatchObject({ outcome: 'refused' });
    expect(await state.admit([tpm('a:tpm', 60)], noon + 5 * 60_000, 'lease-5')).toMatchObject({ outcome: 'refused' });
    // Once full, the bucket is forgotten, and forgetting it changes nothing: absent is full.
    state.sweep(noon + 10 * 60_000);
    expect(state.size().buckets).toBe(0);
    expect(await state.admit([tpm('a:tpm', 60)], noon + 10 * 60_000, 'lease-6')).toEqual({ outcome: 'admitted' });
  });

  it('sweeps on its own as calls come in, at most once per sweepEveryMs', async () => {
    const state = createMemoryLimitState({ sweepEveryMs: 60_000 });
    await state.admit([rpm('a:rpm', 10)], noon, 'lease-1');
    await state.admit([rpm('b:rpm', 10)], noon + 59_999, 'lease-2');
    expect(state.size().buckets).toBe(2);
    await state.admit([], noon + 61_000, 'lease-3'); // a has refilled to full by now; b not yet
    expect(state.size().buckets).toBe(1);
  });

  it('refuses a sweep interval that is not a positive number', () => {
    expect(() => createMemoryLimitState({ sweepEveryMs: 0 })).toThrow(RangeError);
    expect(() => createMemoryLimitState({ sweepEveryMs: Number.NaN })).toThrow(RangeError);
  });
});
