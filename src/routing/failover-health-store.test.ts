// A Redis outage must not fail a request on health: reads, probes and in-flight counts fall back
// to this node's memory, which already knows the cooldowns this node saw, and the shared store
// takes over again when it answers.
import { describe, expect, it } from 'vitest';
import { SluiceError } from '../errors/sluice-error.js';
import { createLogger } from '../observability/logger.js';
import { createFailoverHealthStore } from './failover-health-store.js';
import type { CooldownPolicy, Failure, HealthStore } from './health.js';
import { createMemoryHealthStore } from './memory-health-store.js';

const policy: CooldownPolicy = { initialMs: 1000, maxMs: 8000, probeTimeoutMs: 500 };

/** A memory store that can be switched to fail like an unreachable Redis, and counts its calls. */
function flakyStore(): HealthStore & { down: boolean; calls: number } {
  const inner = createMemoryHealthStore(policy);
  const flaky = {
    down: false,
    calls: 0,
    /** What an unreachable Redis does to every call. */
    async pass<T>(call: () => Promise<T>): Promise<T> {
      flaky.calls += 1;
      if (flaky.down) throw new SluiceError('store_unavailable', { message: 'Redis is unreachable.' });
      return call();
    },
    read: (ids: readonly string[], now: number) => flaky.pass(() => inner.read(ids, now)),
    claimProbe: (id: string, now: number) => flaky.pass(() => inner.claimProbe(id, now)),
    recordSuccess: (id: string, now: number) => flaky.pass(() => inner.recordSuccess(id, now)),
    recordFailure: (id: string, failure: Failure, now: number) => flaky.pass(() => inner.recordFailure(id, failure, now)),
    acquire: (id: string, now: number) => flaky.pass(() => inner.acquire(id, now)),
    readAndAcquire: (ids: readonly string[], acquireId: string, now: number) => flaky.pass(() => inner.readAndAcquire(ids, acquireId, now)),
    reset: (id: string) => flaky.pass(() => inner.reset(id)),
  };
  return flaky;
}

function setUp(connected = { value: true }) {
  const primary = flakyStore();
  const fallback = createMemoryHealthStore(policy);
  const store = createFailoverHealthStore({ primary, fallback, isHealthy: () => connected.value, logger: createLogger('silent') });
  return { primary, fallback, store, connected };
}

describe('failover health store', () => {
  it("answers in the same turn only through a connected primary's own same-turn answer", () => {
    const { primary, store, connected } = setUp();
    // The primary here has none (as Redis without a recent read): nor has the failover store.
    expect(store.readAndAcquireNow?.(['a/m'], 'a/m', 0)).toBeUndefined();
    const answer = { health: new Map(), release: () => undefined };
    const withRecentRead: HealthStore = { ...primary, readAndAcquireNow: () => answer };
    const failover = createFailoverHealthStore({ primary: withRecentRead, fallback: createMemoryHealthStore(policy), isHealthy: () => connected.value, logger: createLogger('silent') });
    expect(failover.readAndAcquireNow?.(['a/m'], 'a/m', 0)).toBe(answer);
    // While Redis is known to be down, `readAndAcquire` decides, from memory.
    connected.value = false;
    expect(failover.readAndAcquireNow?.(['a/m'], 'a/m', 0)).toBeUndefined();
  });

  it('reads from memory while Redis fails, and memory already knows the cooldowns this node saw', async () => {
    const { primary, store } = setUp();
    await store.recordFailure('a/m', { code: 'upstream_unavailable' }, 0);
    primary.down = true;
    expect((await store.read(['a/m'], 500)).get('a/m')).toMatchObject({ state: 'cooling', coolingUntil: 1000 });
    // Failures during the outage count in memory; a probe is this node's alone.
    expect(await store.recordFailure('a/m', { code: 'upstream_error' }, 1000)).toMatchObject({ state: 'cooling', coolingUntil: 3000, consecutiveFailures: 2 });
    expect(await store.claimProbe('a/m', 3000)).toBe(true);
    expect(await store.claimProbe('a/m', 3001)).toBe(false);
  });

  it('goes back to the shared store when it answers again', async () => {
    const { primary, store } = setUp();
    primary.down = true;
    await store.recordFailure('a/m', { code: 'upstream_unavailable' }, 0);
    primary.down = false;
    // The shared store never heard of that failure: it is the cluster's view that counts now.
    expect((await store.read(['a/m'], 500)).get('a/m')?.state).toBe('healthy');
  });

  it('does not even try Redis while the connection is known to be down', async () => {
    const { primary, store, connected } = setUp();
    connected.value = false;
    primary.down = true;
    await store.read(['a/m'], 0);
    await store.claimProbe('a/m', 0);
    const release = await store.acquire('a/m', 0);
    release();
    expect(primary.calls).toBe(0);
  });

  it('counts in flight where the request was acquired and releases it there', async () => {
    const { primary, fallback, store } = setUp();
    const onPrimary = await store.acquire('a/m', 0);
    primary.down = true;
    const onFallback = await store.acquire('a/m', 0);
    expect((await fallback.read(['a/m'], 0)).get('a/m')?.inFlight).toBe(1);
    onFallback();
    expect((await fallback.read(['a/m'], 0)).get('a/m')?.inFlight).toBe(0);
    primary.down = false;
    expect((await store.read(['a/m'], 0)).get('a/m')?.inFlight).toBe(1);
    onPrimary();
    expect((await store.read(['a/m'], 0)).get('a/m')?.inFlight).toBe(0);
  });

  it('reads and acquires in memory while Redis fails, and releases there', async () => {
    const { primary, fallback, store } = setUp();
    primary.down = true;
    const { health, release } = await store.readAndAcquire(['a/m'], 'a/m', 0);
    expect(health.get('a/m')?.state).toBe('healthy');
    expect((await fallback.read(['a/m'], 0)).get('a/m')?.inFlight).toBe(1);
    primary.down = false;
    release();
    expect((await fallback.read(['a/m'], 0)).get('a/m')?.inFlight).toBe(0);
  });

  it('an admin reset that cannot reach Redis says so, after resetting this node', async () => {
    const { primary, fallback, store } = setUp();
    await store.recordFailure('k#1', { code: 'upstream_auth_failed', disable: true }, 0);
    primary.down = true;
    await expect(store.reset('k#1')).rejects.toMatchObject({ code: 'store_unavailable' });
    expect((await fallback.read(['k#1'], 0)).get('k#1')?.state).toBe('healthy');
  });

  it('passes errors other than an unavailable store through', async () => {
    const broken: HealthStore = { ...createMemoryHealthStore(policy), read: () => Promise.reject(new TypeError('bug')) };
    const store = createFailoverHealthStore({ primary: broken, fallback: createMemoryHealthStore(policy), isHealthy: () => true, logger: createLogger('silent') });
    await expect(store.read(['a/m'], 0)).rejects.toThrow(TypeError);
  });
});
