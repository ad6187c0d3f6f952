// Provider budgets are enforced before a request is sent: N requests per minute admit N at once
// and then one every 60/N s; tokens per minute are charged by actual use; waiters are served in
// the order they came and leave the line when their request is cancelled or cannot wait long
// enough; and two nodes on one Redis draw from one budget. The clock is vitest's fake one.
import { beforeAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { redisBackends, type RedisBackend, deleteKeysUnder, uniqueKeyPrefix } from '../../test/support/redis.js';
import { SluiceError } from '../errors/sluice-error.js';
import { createMemoryLimitState } from '../limits/memory-limit-state.js';
import { createRedisLimitState } from '../limits/redis-limit-state.js';
import type { LimitState } from '../limits/limit-state.js';
import { createLogger } from '../observability/logger.js';
import { createRedisConnections } from '../redis/connection.js';
import { createProviderQuotas, type ProviderAdmission, type ProviderRateLimits } from './provider-quotas.js';

const start = Date.UTC(2099, 0, 1);

function quotas(limits: Readonly<Record<string, ProviderRateLimits>>, state: LimitState = createMemoryLimitState()) {
  return createProviderQuotas({ state, limitsOf: (providerId) => limits[providerId], now: () => Date.now() });
}

/** Whether the promise has settled, without waiting for it. */
async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await vi.advanceTimersByTimeAsync(0);
  return settled;
}

describe('provider quotas', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: start });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a provider without a budget is always admitted', async () => {
    const quota = quotas({});
    for (let index = 0; index < 100; index += 1) expect((await quota.tryAdmit('openai', 1000, start)).admitted).toBe(true);
  });

  it('admits at once, with nothing to settle, only a provider without a budget', async () => {
    const quota = quotas({ openai: { requestsPerMinute: 6 }, anthropic: { tokensPerMinute: 1000 }, azure: {} });
    expect(quota.admitsWithoutBudget('openai')).toBeUndefined();
    expect(quota.admitsWithoutBudget('anthropic')).toBeUndefined();
    const free = quota.admitsWithoutBudget('azure');
    expect(free?.admitted).toBe(true);
    await expect(free?.settle(500)).resolves.toBeUndefined();
    expect(quota.admitsWithoutBudget('unknown')?.admitted).toBe(true);
  });

  it('N requests per minute admit N at once, then one every 60/N seconds', async () => {
    const quota = quotas({ openai: { requestsPerMinute: 6 } });
    for (let index = 0; index < 6; index += 1) expect((await quota.tryAdmit('openai', 0, start)).admitted).toBe(true);
    expect(await quota.tryAdmit('openai', 0, start)).toEqual({ admitted: false, retryAfterMs: 10_000, limit: 'provider.requestsPerMinute' });
    expect((await quota.tryAdmit('openai', 0, start + 9_999)).admitted).toBe(false);
    expect((await quota.tryAdmit('openai', 0, start + 10_000)).admitted).toBe(true);
    expect(await quota.tryAdmit('openai', 0, start + 10_000)).toMatchObject({ admitted: false, retryAfterMs: 10_000 });
    // Another provider has its own budget.
    expect((await quota.tryAdmit('azure', 0, start)).admitted).toBe(true);
  });

  it('tokens per minute: the estimate is charged on admission, the rest of the actual use when it ends', async () => {
    const quota = quotas({ openai: { tokensPerMinute: 1000 } });
    const admitted: ProviderAdmission[] = [];
    // 400-token prompts admitted at the same instant see each other: 1000 → 600 → 200 → -200.
    for (let index = 0; index < 5; index += 1) {
      const result = await quota.tryAdmit('openai', 400, start);
      if (result.admitted) admitted.push(result);
    }
    expect(admitted).toHaveLength(3);
    expect(await quota.tryAdmit('openai', 400, start)).toMatchObject({ admitted: false, limit: 'provider.tokensPerMinute' });
    // In debt by 200: out of it 12 s later (1000 per minute), when one more may go.
    const inDebt = await quota.tryAdmit('openai', 0, start);
    expect(inDebt.admitted ? 0 : inDebt.retryAfterMs).toBeGreaterThanOrEqual(12_000);
    expect(inDebt.admitted ? 0 : inDebt.retryAfterMs).toBeLessThanOrEqual(12_001);
    expect((await quota.tryAdmit('openai', 0, start + 11_000)).admitted).toBe(false);
    expect((await quota.tryAdmit('openai', 0, start + 12_001)).admitted).toBe(true);

    // The first three answered 1000 tokens each (400 of them already charged): 1800 more of debt.
    for (const admission of admitted) await admission.settle(1000);
    const refused = await quota.tryAdmit('openai', 0, start + 12_001);
    expect(refused.admitted ? 0 : refused.retryAfterMs).toBeGreaterThan(107_000);
    // A second settle of the same admission charges nothing more.
    await admitted[0]?.settle(1000);
    expect(await quota.tryAdmit('openai', 0, start + 12_001)).toEqual(refused);
  });

  it('waiters are served in the order they came, one as each request refills', async () => {
    const quota = quotas({ openai: { requestsPerMinute: 1 } });
    expect((await quota.tryAdmit('openai', 0, start)).admitted).toBe(true);
    const order: string[] = [];
    const waits = ['first', 'second', 'third'].map((name) =>
      quota.waitForAdmission('openai', 0, { timeoutMs: 200_000 }).then(() => {
        order.push(name);
      }),
    );
    await vi.advanceTimersByTimeAsync(59_999);
    expect(order).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(order).toEqual(['first']);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(order).toEqual(['first', 'second']);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(order).toEqual(['first', 'second', 'third']);
    await Promise.all(waits);
  });

  it('a cancelled request leaves the line: the one behind it takes its turn', async () => {
    const quota = quotas({ openai: { requestsPerMinute: 1 } });
    await quota.tryAdmit('openai', 0, start);
    const cancel = new AbortController();
    const first = quota.waitForAdmission('openai', 0, { timeoutMs: 200_000 });
    const cancelled = quota.waitForAdmission('openai', 0, { timeoutMs: 200_000, signal: cancel.signal });
    const third = quota.waitForAdmission('openai', 0, { timeoutMs: 200_000 });
    const reason = new SluiceError('cancelled', { message: 'The client went away.' });
    cancel.abort(reason);
    await expect(cancelled).rejects.toBe(reason);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(await isSettled(first)).toBe(true);
    expect(await isSettled(third)).toBe(false);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(await isSettled(third)).toBe(true);
    // An already aborted signal never joins the line.
    await expect(quota.waitForAdmission('openai', 0, { timeoutMs: 1000, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  it('a request that cannot wait until the budget refills is refused at once, with Retry-After', async () => {
    const quota = quotas({ openai: { requestsPerMinute: 1 } });
    await quota.tryAdmit('openai', 0, start);
    const error: unknown = await quota.waitForAdmission('openai', 0, { timeoutMs: 10_000 }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(SluiceError);
    expect(error).toMatchObject({ code: 'provider_limit_reached', status: 429, retryAfterSeconds: 60, provider: 'openai' });
    expect(Date.now()).toBe(start);
    // One that could wait long enough is in line; one joining behind it that cannot is refused too.
    const patient = quota.waitForAdmission('openai', 0, { timeoutMs: 70_000 });
    await vi.advanceTimersByTimeAsync(1000);
    await expect(quota.waitForAdmission('openai', 0, { timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'provider_limit_reached', retryAfterSeconds: 59 });
    await vi.advanceTimersByTimeAsync(59_000);
    expect(await isSettled(patient)).toBe(true);
  });

  it('a waiter gives up after its timeout when other nodes keep taking the refills first', async () => {
    // A budget that other nodes drain: every admission is refused with a wait of 1 s.
    const drained: LimitState = {
      admit: async () => ({ outcome: 'refused', failed: { kind: 'requests', key: 'provider:openai:rpm', limit: 60, label: 'provider.requestsPerMinute', periodMs: 60_000 }, retryAfterMs: 1000 }),
      seed: async () => undefined,
      settle: async () => undefined,
    };
    const quota = quotas({ openai: { requestsPerMinute: 60 } }, drained);
    const waiting = quota.waitForAdmission('openai', 0, { timeoutMs: 5000 }).catch((thrown: unknown) => thrown);
    await vi.advanceTimersByTimeAsync(4999);
    expect(await isSettled(waiting)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await waiting).toMatchObject({ code: 'provider_limit_reached', retryAfterSeconds: 1 });
  });
});

const backends = await redisBackends();
/** The backend the running describe block tests (the blocks run one after another). */
let backend: RedisBackend = backends[0]!;

for (const each of backends) describe.skipIf(!each.available)(`provider quotas across nodes (${each.name})`, () => {
  beforeAll(() => {
    backend = each;
  });
  it('two nodes on one Redis draw from one budget', async () => {
    const prefix = uniqueKeyPrefix();
    const connections = [0, 1].map(() => createRedisConnections({ ...backend.target, keyPrefix: prefix, logger: createLogger('silent') }));
    try {
      await Promise.all(connections.map((redis) => redis.ready()));
      const limits = { openai: { requestsPerMinute: 4, tokensPerMinute: 1000 } };
      const [first, second] = connections.map((redis) => quotas(limits, createRedisLimitState(redis)));
      if (first === undefined || second === undefined) throw new Error('two nodes expected');
      const now = Date.now();
      const results = await Promise.all(Array.from({ length: 10 }, (_, index) => (index % 2 === 0 ? first : second).tryAdmit('openai', 0, now)));
      expect(results.filter((result) => result.admitted)).toHaveLength(4);
      // Tokens charged on one node hold back the other.
      const admitted = results.find((result): result is ProviderAdmission => result.admitted);
      await admitted?.settle(1500);
      expect(await second.tryAdmit('openai', 0, now + 15_000)).toMatchObject({ admitted: false, limit: 'provider.tokensPerMinute' });
    } finally {
      for (const redis of connections.slice(0, 1)) await deleteKeysUnder(redis.command, prefix);
      await Promise.all(connections.map((redis) => redis.close()));
    }
  });
});
