// The LimitState contract, run on every implementation (memory and Redis) so they cannot drift
// apart: all or nothing at admit, an unseeded quota is never skipped, a seed never overwrites what
// was charged, a settle frees only its own admission's slots, and every wait is exact to the ms.
// The clock is fake and far in the future: Redis expires quota keys at their real periodEnd, so a
// period must not have ended in real time while the tests run.
import { afterEach, describe, expect, it } from 'vitest';
import { redisBackends, uniqueKeyPrefix, deleteKeysUnder } from '../../test/support/redis.js';
import { createRedisConnections, type RedisConnections } from '../redis/connection.js';
import { createLogger } from '../observability/logger.js';
import type { LimitCheck, LimitState, QuotaCheck, RateCheck } from './limit-state.js';
import { createMemoryLimitState } from './memory-limit-state.js';
import { createRedisLimitState } from './redis-limit-state.js';

const noon = Date.UTC(2099, 11, 1, 12);
const dayStart = Date.UTC(2099, 11, 1);
const dayEnd = Date.UTC(2099, 11, 2);

const rpm = (key: string, limit: number): RateCheck => ({ kind: 'requests', key, limit, label: 'key.requestsPerMinute', periodMs: 60_000 });
const tpm = (key: string, limit: number): RateCheck => ({ kind: 'tokens', key, limit, label: 'key.tokensPerMinute', periodMs: 60_000 });
const streams = (key: string, limit: number): LimitCheck => ({ kind: 'concurrency', key, limit, label: 'key.concurrentStreams' });
const daily = (key: string, limit: number): QuotaCheck => ({ kind: 'quota', key, limit, label: 'user.dailyTokens', periodStart: dayStart, periodEnd: dayEnd });

const deleteKeys = (redis: RedisConnections, prefix: string) => deleteKeysUnder(redis.command, prefix);

interface Implementation {
  readonly name: string;
  readonly available: boolean;
  create(): Promise<{ readonly state: LimitState; readonly cleanup: () => Promise<void> }>;
}

const backends = await redisBackends();

const implementations: Implementation[] = [
  { name: 'memory', available: true, create: async () => ({ state: createMemoryLimitState(), cleanup: async () => undefined }) },
  ...backends.map((backend) => ({
    name: `redis (${backend.name})`,
    available: backend.available,
    create: async () => {
      const keyPrefix = uniqueKeyPrefix();
      const redis = createRedisConnections({ ...backend.target, keyPrefix, logger: createLogger('silent') });
      await redis.ready();
      return {
        state: createRedisLimitState(redis),
        cleanup: async () => {
          await deleteKeys(redis, keyPrefix);
          await redis.close();
        },
      };
    },
  })),
];

describe.each(implementations)('$name limit state', (implementation) => {
  const test = implementation.available ? it : it.skip;
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });
  async function createState(): Promise<LimitState> {
    const { state, cleanup } = await implementation.create();
    cleanups.push(cleanup);
    return state;
  }

  test('admits all or nothing: a failing check leaves the passing ones untouched', async () => {
    const state = await createState();
    const checks = [rpm('a:rpm', 1), streams('a:streams', 1), rpm('b:rpm', 1)];
    expect(await state.admit([rpm('b:rpm', 1)], noon, 'lease-0')).toEqual({ outcome: 'admitted' });
    expect(await state.admit(checks, noon, 'lease-1')).toEqual({ outcome: 'refused', failed: rpm('b:rpm', 1), retryAfterMs: 60_000 });
    // Had the refusal taken a:rpm's one token or a:streams' one slot, this would be refused.
    expect(await state.admit(checks.slice(0, 2), noon, 'lease-2')).toEqual({ outcome: 'admitted' });
  });

  test('asks for a seed before checking anything, and takes nothing meanwhile', async () => {
    const state = await createState();
    const checks = [rpm('a:rpm', 1), daily('a:day', 100)];
    expect(await state.admit(checks, noon, 'lease-1')).toEqual({ outcome: 'needs-seed', quotas: [daily('a:day', 100)] });
    expect(await state.admit([streams('a:streams', 1), daily('a:day', 100), daily('b:day', 5)], noon, 'lease-2')).toEqual({
      outcome: 'needs-seed',
      quotas: [daily('a:day', 100), daily('b:day', 5)],
    });
    await state.seed(daily('a:day', 100), 0, noon);
    // The one request per minute and the one slot were still there.
    expect(await state.admit([...checks, streams('a:streams', 1)], noon, 'lease-3')).toEqual({ outcome: 'admitted' });
    expect(await state.admit(checks, noon, 'lease-4')).toMatchObject({ outcome: 'refused', failed: { key: 'a:rpm' } });
  });

  test('a seeded quota refuses once used up, until the period ends', async () => {
    const state = await createState();
    await state.seed(daily('a:day', 100), 100, noon);
    expect(await state.admit([daily('a:day', 100)], noon, 'lease-1')).toEqual({ outcome: 'refused', failed: daily('a:day', 100), retryAfterMs: 12 * 3_600_000 });
    expect(await state.admit([daily('a:day', 100)], dayEnd - 1, 'lease-2')).toMatchObject({ outcome: 'refused', retryAfterMs: 1 });
    // From periodEnd on the counter is gone: the next period must be seeded again.
    expect(await state.admit([daily('a:day', 100)], dayEnd, 'lease-3')).toEqual({ outcome: 'needs-seed', quotas: [daily('a:day', 100)] });
  });

  test('a seed never overwrites a counter already there (first seed wins; a settle counts as one)', async () => {
    const state = await createState();
    await state.seed(daily('a:day', 100), 40, noon);
    await state.seed(daily('a:day', 100), 0, noon);
    await state.settle([daily('a:day', 100)], 59, noon, 'lease-1');
    expect(await state.admit([daily('a:day', 100)], noon, 'lease-2')).toEqual({ outcome: 'admitted' });
    await state.settle([daily('a:day', 100)], 1, noon, 'lease-2');
    expect(await state.admit([daily('a:day', 100)], noon, 'lease-3')).toMatchObject({ outcome: 'refused' });

    // A settle into an absent counter (the day began during the generation) starts it from 0.
    await state.settle([daily('b:day', 100)], 30, noon, 'lease-4');
    await state.seed(daily('b:day', 100), 1000, noon);
    expect(await state.admit([daily('b:day', 100)], noon, 'lease-5')).toEqual({ outcome: 'admitted' });
    await state.settle([daily('b:day', 100)], 69, noon, 'lease-5');
    expect(await state.admit([daily('b:day', 100)], noon, 'lease-6')).toEqual({ outcome: 'admitted' });
    await state.settle([daily('b:day', 100)], 1, noon, 'lease-6');
    expect(await state.admit([daily('b:day', 100)], noon, 'lease-7')).toMatchObject({ outcome: 'refused' });
  });

  test('a settle after the period ended starts the counter of that period afresh', async () => {
    const state = await createState();
    await state.seed(daily('a:day', 100), 100, noon);
    await state.settle([daily('a:day', 100)], 10, dayEnd, 'lease-1');
    // The stale 100 is gone; only the 10 counts, and the counter exists, so no seed is asked.
    expect(await state.admit([daily('a:day', 100)], dayEnd - 1, 'lease-2')).toEqual({ outcome: 'admitted' });
  });

  test('releases a slot at most down to 0', async () => {
    const state = await createState();
    await state.settle([streams('a:streams', 1)], 0, noon, 'never-admitted');
    await state.settle([streams('a:streams', 1)], 0, noon, 'never-admitted');
    expect(await state.admit([streams('a:streams', 1)], noon, 'lease-1')).toEqual({ outcome: 'admitted' });
    expect(await state.admit([streams('a:streams', 1)], noon, 'lease-2')).toEqual({ outcome: 'refused', failed: streams('a:streams', 1), retryAfterMs: 1000 });
  });

  test('a settle frees only the slots its own lease holds, and only once', async () => {
    const state = await createState();
    const checks = [streams('key:streams', 2), streams('user:streams', 3)];
    expect(await state.admit(checks, noon, 'first')).toEqual({ outcome: 'admitted' });
    expect(await state.admit(checks, noon, 'second')).toEqual({ outcome: 'admitted' });
    expect(await state.admit(checks, noon, 'third')).toMatchObject({ outcome: 'refused', failed: { key: 'key:streams' } });
    await state.settle(checks, 0, noon, 'first');
    await state.settle(checks, 0, noon, 'first');
    await state.settle(checks, 0, noon, 'third'); // refused, so it holds nothing
    expect(await state.admit(checks, noon, 'fourth')).toEqual({ outcome: 'admitted' });
    expect(await state.admit(checks, noon, 'fifth')).toMatchObject({ outcome: 'refused', failed: { key: 'key:streams' } });
  });

  test('a limit of 0 refuses with the period as the wait', async () => {
    const state = await createState();
    expect(await state.admit([rpm('a:rpm', 0)], noon, 'lease-1')).toMatchObject({ outcome: 'refused', retryAfterMs: 60_000 });
    expect(await state.admit([tpm('a:tpm', 0)], noon, 'lease-2')).toMatchObject({ outcome: 'refused', retryAfterMs: 60_000 });
    expect(await state.admit([streams('a:streams', 0)], noon, 'lease-3')).toMatchObject({ outcome: 'refused', retryAfterMs: 1000 });
    await state.seed(daily('a:day', 0), 0, noon);
    expect(await state.admit([daily('a:day', 0)], noon, 'lease-4')).toMatchObject({ outcome: 'refused', retryAfterMs: 12 * 3_600_000 });
  });

  test('treats negative or non-finite token counts as 0', async () => {
    const state = await createState();
    await state.settle([tpm('a:tpm', 10)], -50, noon, 'lease-1');
    await state.settle([tpm('a:tpm', 10)], Number.NaN, noon, 'lease-1');
    await state.settle([tpm('a:tpm', 10)], Number.POSITIVE_INFINITY, noon, 'lease-1');
    await state.settle([tpm('a:tpm', 10)], 10, noon, 'lease-1');
    expect(await state.admit([tpm('a:tpm', 10)], noon, 'lease-2')).toMatchObject({ outcome: 'refused', retryAfterMs: 1 });
  });

  test('a request bucket refills: the wait is exact to the millisecond, with an inexact rate', async () => {
    const state = await createState();
    // 7 per minute: one request back every 8571.43 ms.
    for (let index = 0; index < 7; index += 1) expect(await state.admit([rpm('a:rpm', 7)], noon, `lease-${index}`)).toEqual({ outcome: 'admitted' });
    expect(await state.admit([rpm('a:rpm', 7)], noon, 'late-1')).toMatchObject({ outcome: 'refused', retryAfterMs: 8572 });
    expect(await state.admit([rpm('a:rpm', 7)], noon + 8571, 'late-2')).toMatchObject({ outcome: 'refused', retryAfterMs: 1 });
    expect(await state.admit([rpm('a:rpm', 7)], noon + 8572, 'late-3')).toEqual({ outcome: 'admitted' });
    expect(await state.admit([rpm('a:rpm', 7)], noon + 8572, 'late-4')).toMatchObject({ outcome: 'refused', retryAfterMs: 8571 });
  });

  test('a token bucket in debt refuses until refill pays it back, to the millisecond', async () => {
    const state = await createState();
    expect(await state.admit([tpm('a:tpm', 1000)], noon, 'lease-1')).toEqual({ outcome: 'admitted' });
    // Admit takes nothing from a token bucket; the settle runs it 9000 into debt.
    expect(await state.admit([tpm('a:tpm', 1000)], noon, 'lease-2')).toEqual({ outcome: 'admitted' });
    await state.settle([tpm('a:tpm', 1000)], 10_000, noon, 'lease-1');
    // -9000 at 1/60 token per ms: 0 after 540 000 ms, above 0 from 540 001 ms.
    expect(await state.admit([tpm('a:tpm', 1000)], noon, 'lease-3')).toMatchObject({ outcome: 'refused', retryAfterMs: 540_001 });
    expect(await state.admit([tpm('a:tpm', 1000)], noon + 540_000, 'lease-4')).toMatchObject({ outcome: 'refused', retryAfterMs: 1 });
    expect(await state.admit([tpm('a:tpm', 1000)], noon + 540_001, 'lease-5')).toEqual({ outcome: 'admitted' });
  });

  test('settle ignores request buckets and charges token buckets', async () => {
    const state = await createState();
    await state.settle([rpm('a:rpm', 1), tpm('a:tpm', 60)], 120, noon, 'lease-1');
    expect(await state.admit([rpm('a:rpm', 1)], noon, 'lease-2')).toEqual({ outcome: 'admitted' });
    // 60 in debt at 1 token per 1000 ms: above 0 from 60 001 ms.
    expect(await state.admit([tpm('a:tpm', 60)], noon, 'lease-3')).toMatchObject({ outcome: 'refused', retryAfterMs: 60_001 });
  });

  test('when several checks refuse, names the one that lasts longest', async () => {
    const state = await createState();
    await state.seed(daily('a:day', 5), 5, noon);
    await state.admit([rpm('a:rpm', 1), streams('a:streams', 1)], noon, 'lease-1');
    expect(await state.admit([rpm('a:rpm', 1), daily('a:day', 5), streams('a:streams', 1)], noon, 'lease-2')).toEqual({
      outcome: 'refused',
      failed: daily('a:day', 5),
      retryAfterMs: 12 * 3_600_000,
    });
    expect(await state.admit([streams('a:streams', 1), rpm('a:rpm', 1)], noon, 'lease-3')).toEqual({ outcome: 'refused', failed: rpm('a:rpm', 1), retryAfterMs: 60_000 });
  });

  test('with no checks, admits', async () => {
    const state = await createState();
    expect(await state.admit([], noon, 'lease-1')).toEqual({ outcome: 'admitted' });
    await state.settle([], 100, noon, 'lease-1');
  });
});
