// The chooser on its own, with a fake clock, a seeded random and the memory health store: priority
// before strategy, weighted shares, least-busy by in-flight count, key rotation and a refused key,
// the retry bounds, a pool with nothing available (pool_unavailable with its wait), and fallback
// pools after the whole first pool.
import { describe, expect, it } from 'vitest';
import type { RouterSettings } from '../config/config.js';
import type { ProviderAdapter } from '../contract/provider.js';
import { SluiceError } from '../errors/sluice-error.js';
import { createMemoryLimitState } from '../limits/memory-limit-state.js';
import { createMetrics } from '../observability/metrics.js';
import { createLogger } from '../observability/logger.js';
import { createMemoryHealthStore } from './memory-health-store.js';
import type { HealthStore } from './health.js';
import { createProviderQuotas, type ProviderRateLimits } from './provider-quotas.js';
import { createUpstreamPools, type Pool, type PoolDeployment } from './upstream-pools.js';
import { seededRandom } from '../../test/support/seeded-random.js';

const settings: RouterSettings = { retry: { maxAttempts: 3, maxTotalMs: 60_000 }, cooldown: { initialMs: 1000, maxMs: 10_000, probeTimeoutMs: 5000 }, queueTimeoutMs: 0 };
const timeouts = { connectMs: 1000, firstByteMs: 1000, idleMs: 1000, totalMs: 0 };

function adapter(id: string): ProviderAdapter {
  return { id, type: 'openai', models: [], stream: () => (async function* () {})(), close: () => Promise.resolve() };
}

function deployment(provider: string, options: { weight?: number; priority?: number; keys?: number } = {}): PoolDeployment {
  const keys = Array.from({ length: options.keys ?? 1 }, (_, index) => ({ id: `${provider}#${(index + 1).toString()}`, apiKey: `secret-${provider}-${index.toString()}` }));
  return { id: `${provider}/m`, provider, model: 'm', weight: options.weight ?? 1, priority: options.priority ?? 0, adapter: adapter(provider), timeouts, keys };
}

function setup(options: { health?: HealthStore; limits?: Readonly<Record<string, ProviderRateLimits>> } = {}) {
  let clock = 1_000_000;
  const health = options.health ?? createMemoryHealthStore(settings.cooldown);
  const pools = createUpstreamPools({
    health,
    quotas: createProviderQuotas({ state: createMemoryLimitState(), limitsOf: (provider) => options.limits?.[provider], now: () => clock }),
    now: () => clock,
    logger: createLogger('silent'),
    metrics: createMetrics({ defaultMetrics: false }),
    random: seededRandom(42),
  });
  return { pools, health, advance: (ms: number) => (clock += ms) };
}

const signal = new AbortController().signal;
const pool = (deployments: PoolDeployment[], strategy: Pool['strategy'] = 'weighted', name = 'chat'): Pool => ({ name, strategy, deployments });

describe('choosing a deployment', () => {
  it('weighted: 3:1 weights give a 3:1 share', async () => {
    const { pools } = setup();
    const route = { pools: [pool([deployment('a', { weight: 3 }), deployment('b', { weight: 1 })])], settings };
    const counts = new Map<string, number>();
    for (let index = 0; index < 4000; index += 1) {
      const attempt = await pools.open(route, { estimatedPromptTokens: 1 }).next(signal);
      counts.set(attempt!.deployment, (counts.get(attempt!.deployment) ?? 0) + 1);
      attempt!.ended(0);
    }
    expect((counts.get('a/m') ?? 0) / 4000).toBeCloseTo(0.75, 1);
  });

  it('takes priority 1 only when every priority-0 deployment is unavailable', async () => {
    const { pools, health } = setup();
    const route = { pools: [pool([deployment('spare', { priority: 1, weight: 100 }), deployment('a'), deployment('b')], 'ordered')], settings };
    expect((await pools.open(route, { estimatedPromptTokens: 0 }).next(signal))?.deployment).toBe('a/m');
    await health.recordFailure('a/m', { code: 'upstream_unavailable' }, 1_000_000);
    expect((await pools.open(route, { estimatedPromptTokens: 0 }).next(signal))?.deployment).toBe('b/m');
    await health.recordFailure('b#1', { code: 'upstream_auth_failed', disable: true }, 1_000_000);
    expect((await pools.open(route, { estimatedPromptTokens: 0 }).next(signal))?.deployment).toBe('spare/m');
  });

  it('least-busy: the deployment with the fewest requests in flight', async () => {
    const { pools } = setup();
    const route = { pools: [pool([deployment('a'), deployment('b'), deployment('c')], 'least-busy')], settings };
    const held = [];
    for (let index = 0; index < 3; index += 1) held.push(await pools.open(route, { estimatedPromptTokens: 0 }).next(signal));
    expect(new Set(held.map((attempt) => attempt?.deployment))).toEqual(new Set(['a/m', 'b/m', 'c/m']));
    held.find((attempt) => attempt?.deployment === 'b/m')?.ended(0);
    expect((await pools.open(route, { estimatedPromptTokens: 0 }).next(signal))?.deployment).toBe('b/m');
  });

  it('rotates keys, and after a 401 the same request tries the other key of the same deployment', async () => {
    const { pools, health } = setup();
    const route = { pools: [pool([deployment('a', { keys: 2 })])], settings };
    const first = await pools.open(route, { estimatedPromptTokens: 0 }).next(signal);
    const second = await pools.open(route, { estimatedPromptTokens: 0 }).next(signal);
    expect([first?.keyId, second?.keyId].sort()).toEqual(['a#1', 'a#2']);
    const source = pools.open(route, { estimatedPromptTokens: 0 });
    const refused = await source.next(signal);
    await refused!.failed(new SluiceError('upstream_auth_failed', { upstreamStatus: 401 }));
    const retry = await source.next(signal);
    expect(retry?.deployment).toBe('a/m');
    expect(retry?.keyId).not.toBe(refused?.keyId);
    expect((await health.read([refused!.keyId!], 0)).get(refused!.keyId!)?.state).toBe('disabled');
  });
});

describe('bounds and exhaustion', () => {
  it('makes at most maxAttempts per pool, then tries the fallback pool', async () => {
    const { pools } = setup();
    const route = { pools: [pool([deployment('a'), deployment('b'), deployment('c')], 'ordered'), pool([deployment('z')], 'ordered', 'backup')], settings: { ...settings, retry: { maxAttempts: 2, maxTotalMs: 60_000 } } };
    const source = pools.open(route, { estimatedPromptTokens: 0 });
    const seen = [];
    for (let attempt = await source.next(signal); attempt; attempt = await source.next(signal)) {
      seen.push(attempt.deployment);
      await attempt.failed(new SluiceError('upstream_error'));
    }
    expect(seen).toEqual(['a/m', 'b/m', 'z/m']);
  });

  it('every deployment cooling: pool_unavailable with the wait until the first may be tried', async () => {
    const { pools, health, advance } = setup();
    await health.recordFailure('a/m', { code: 'upstream_unavailable', retryAfterMs: 4000 }, 1_000_000);
    await health.recordFailure('b/m', { code: 'upstream_unavailable', retryAfterMs: 9000 }, 1_000_000);
    advance(1000);
    const route = { pools: [pool([deployment('a'), deployment('b')])], settings };
    const error: unknown = await Promise.resolve(pools.open(route, { estimatedPromptTokens: 0 }).next(signal)).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as SluiceError).code).toBe('pool_unavailable');
    expect((error as SluiceError).retryAfterSeconds).toBe(3);
    expect((error as SluiceError).message).toContain('"chat"');
  });
});

describe('a pool of one', () => {
  /**
   * The memory store, counting the calls that reach it; `inMemory: false` leaves out its
   * same-turn step, as a store that asks Redis does.
   */
  function countingStore({ inMemory = true } = {}) {
    const inner = createMemoryHealthStore(settings.cooldown);
    const calls = { read: 0, acquire: 0, readAndAcquire: 0, readAndAcquireNow: 0 };
    const store: HealthStore = {
      ...inner,
      read: (ids, now) => ((calls.read += 1), inner.read(ids, now)),
      acquire: (id, now) => ((calls.acquire += 1), inner.acquire(id, now)),
      readAndAcquire: (ids, id, now) => ((calls.readAndAcquire += 1), inner.readAndAcquire(ids, id, now)),
      readAndAcquireNow: (ids, id, now) => ((calls.readAndAcquireNow += 1), inner.readAndAcquireNow!(ids, id, now)),
    };
    if (!inMemory) delete store.readAndAcquireNow;
    return { store, inner, calls };
  }
  const inFlight = async (health: HealthStore) => (await health.read(['a/m'], 0)).get('a/m')?.inFlight;

  it('reads health and counts the request in one step of the store, and the attempt releases it', async () => {
    const { store, inner, calls } = countingStore({ inMemory: false });
    const { pools } = setup({ health: store });
    const attempt = await pools.open({ pools: [pool([deployment('a')])], settings }, { estimatedPromptTokens: 0 }).next(signal);
    expect(calls).toEqual({ read: 0, acquire: 0, readAndAcquire: 1, readAndAcquireNow: 0 });
    expect(await inFlight(inner)).toBe(1);
    attempt?.ended(0);
    attempt?.ended(0);
    expect(await inFlight(inner)).toBe(0);
  });

  it('health in memory and a provider without a budget: the first attempt comes in the same turn, counted, as choose would pick it', async () => {
    const { store, inner, calls } = countingStore();
    const { pools } = setup({ health: store });
    await inner.recordFailure('a/m', { code: 'upstream_unavailable' }, 1_000_000);
    await inner.recordFailure('a#1', { code: 'upstream_rate_limited' }, 1_000_000);
    const source = pools.open({ pools: [pool([deployment('a', { keys: 2 })])], settings }, { estimatedPromptTokens: 0 });
    const attempt = source.first?.();
    // Cooling, and a cooling key, read as healthy in a pool of one; the rotation starts at the first key.
    expect(attempt).toMatchObject({ deployment: 'a/m', keyId: 'a#1', apiKey: 'secret-a-0' });
    expect(calls).toEqual({ read: 0, acquire: 0, readAndAcquire: 0, readAndAcquireNow: 1 });
    expect(await inFlight(inner)).toBe(1);
    // Asked again, it has no first attempt to give; the next attempt of the same request goes the
    // usual way, knowing what the first one met.
    expect(source.first?.()).toBeUndefined();
    await attempt?.failed(new SluiceError('upstream_auth_failed', { upstreamStatus: 401 }));
    attempt?.ended(0);
    expect(await inFlight(inner)).toBe(0);
    expect(await source.next(signal)).toMatchObject({ deployment: 'a/m', keyId: 'a#2' });
    expect(calls).toEqual({ read: 0, acquire: 0, readAndAcquire: 1, readAndAcquireNow: 1 });
  });

  it('the same-turn attempt counts against the retry bounds', async () => {
    const { pools } = setup();
    const source = pools.open({ pools: [pool([deployment('a', { keys: 3 })])], settings: { ...settings, retry: { maxAttempts: 2, maxTotalMs: 60_000 } } }, { estimatedPromptTokens: 0 });
    const seen = [];
    for (let attempt = source.first?.() ?? (await source.next(signal)); attempt; attempt = await source.next(signal)) {
      seen.push(attempt.keyId);
      await attempt.failed(new SluiceError('upstream_auth_failed', { upstreamStatus: 401 }));
      attempt.ended(0);
    }
    expect(seen).toHaveLength(2);
    expect(new Set(seen).size).toBe(2);
  });

  it('none in the same turn from a provider with a budget, a disabled deployment, a pool of several, or a store that asks elsewhere; nothing stays counted', async () => {
    const budgeted = setup({ limits: { a: { tokensPerMinute: 5000 } } });
    const withBudget = budgeted.pools.open({ pools: [pool([deployment('a')])], settings }, { estimatedPromptTokens: 0 });
    expect(withBudget.first?.()).toBeUndefined();
    expect((await withBudget.next(signal))?.deployment).toBe('a/m');

    const { store, inner, calls } = countingStore();
    const { pools } = setup({ health: store });
    await inner.recordFailure('a/m', { code: 'upstream_auth_failed', disable: true }, 1_000_000);
    const disabled = pools.open({ pools: [pool([deployment('a')])], settings }, { estimatedPromptTokens: 0 });
    expect(disabled.first?.()).toBeUndefined();
    await expect(disabled.next(signal)).rejects.toMatchObject({ code: 'pool_unavailable' });
    expect(calls).toEqual({ read: 0, acquire: 0, readAndAcquire: 1, readAndAcquireNow: 1 });
    expect(await inFlight(inner)).toBe(0);

    expect(pools.open({ pools: [pool([deployment('b'), deployment('c')])], settings }, { estimatedPromptTokens: 0 }).first?.()).toBeUndefined();
    const remote = countingStore({ inMemory: false });
    expect(setup({ health: remote.store }).pools.open({ pools: [pool([deployment('a')])], settings }, { estimatedPromptTokens: 0 }).first?.()).toBeUndefined();
    expect(calls.readAndAcquireNow + remote.calls.readAndAcquireNow).toBe(1);
  });

  it('whose only key is refused: pool_unavailable, and nothing stays counted', async () => {
    const { pools, health } = setup();
    await health.recordFailure('a#1', { code: 'upstream_auth_failed', disable: true }, 1_000_000);
    const error: unknown = await Promise.resolve(pools.open({ pools: [pool([deployment('a')])], settings }, { estimatedPromptTokens: 0 }).next(signal)).catch((thrown: unknown) => thrown);
    expect((error as SluiceError).code).toBe('pool_unavailable');
    expect(await inFlight(health)).toBe(0);
  });

  it('out of budget: not counted in flight while the request waits in line', async () => {
    const { pools, health } = setup({ limits: { a: { requestsPerMinute: 1 } } });
    const route = { pools: [pool([deployment('a')])], settings: { ...settings, queueTimeoutMs: 60_000 } };
    const first = await pools.open(route, { estimatedPromptTokens: 0 }).next(signal);
    const leave = new AbortController();
    const waiting = Promise.resolve(pools.open(route, { estimatedPromptTokens: 0 }).next(leave.signal)).catch((thrown: unknown) => thrown);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await inFlight(health)).toBe(1);
    leave.abort(new SluiceError('cancelled'));
    expect(await waiting).toMatchObject({ code: 'cancelled' });
    expect(await inFlight(health)).toBe(1);
    first?.ended(0);
    expect(await inFlight(health)).toBe(0);
  });
});
