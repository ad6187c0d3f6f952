// The Redis HealthStore runs the contract every store must pass (health-store-contract.test.ts),
// plus what only a shared store promises: two nodes see each other's cooldowns and in-flight
// counts, exactly one of them gets a half-open probe, a dead node's lease stops counting, keys
// vanish when nothing is known any more, and a dead Redis fails at once instead of hanging.
import { beforeAll, afterEach, describe, expect, it } from 'vitest';
import { redisBackends, type RedisBackend, deleteKeysUnder, keysUnder, startRedisProxy, uniqueKeyPrefix } from '../../test/support/redis.js';
import { unusedPort } from '../../test/support/tcp.js';
import { createRedisConnections, type RedisConnections, type RedisTarget } from '../redis/connection.js';
import { createLogger } from '../observability/logger.js';
import { contractPolicy, describeHealthStore } from './health-store-contract.test.js';
import { createRedisHealthStore } from './redis-health-store.js';

const backends = await redisBackends();
/** The backend the running describe block tests (the blocks run one after another). */
let backend: RedisBackend = backends[0]!;

const opened: RedisConnections[] = [];
const prefixes: string[] = [];

/** A node's connections under `keyPrefix`, closed after the test. */
async function connect(keyPrefix: string, target: RedisTarget = backend.target): Promise<RedisConnections> {
  const redis = createRedisConnections({ ...target, keyPrefix, logger: createLogger('silent') });
  opened.push(redis);
  if (target === backend.target) await redis.ready();
  return redis;
}

/** A fresh prefix whose keys are deleted after the test. */
function newPrefix(): string {
  const prefix = uniqueKeyPrefix();
  prefixes.push(prefix);
  return prefix;
}

afterEach(async () => {
  if (backend.available && prefixes.length > 0) {
    const cleaner = await connect(uniqueKeyPrefix());
    for (const prefix of prefixes.splice(0)) await deleteKeysUnder(cleaner.command, prefix);
  }
  await Promise.all(opened.splice(0).map((redis) => redis.close()));
});

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

for (const each of backends) describe.skipIf(!each.available)(`redis health store (${each.name})`, () => {
  beforeAll(() => {
    backend = each;
  });
  describeHealthStore('redis', async () => createRedisHealthStore(await connect(newPrefix()), contractPolicy));

  it("two nodes see each other's cooldowns and in-flight counts", async () => {
    const prefix = newPrefix();
    const first = createRedisHealthStore(await connect(prefix), contractPolicy);
    const second = createRedisHealthStore(await connect(prefix), contractPolicy);
    await first.recordFailure('openai/gpt-4o', { code: 'upstream_unavailable' }, 10_000);
    const releaseOne = await first.acquire('azure/gpt-4o', 10_000);
    const releaseTwo = await second.acquire('azure/gpt-4o', 10_000);
    const seen = await second.read(['openai/gpt-4o', 'azure/gpt-4o'], 10_500);
    expect(seen.get('openai/gpt-4o')).toMatchObject({ state: 'cooling', coolingUntil: 11_000, consecutiveFailures: 1, lastErrorCode: 'upstream_unavailable', lastFailureAt: 10_000 });
    expect(seen.get('azure/gpt-4o')).toEqual({ state: 'healthy', consecutiveFailures: 0, inFlight: 2 });
    // A release on one node counts on the other; a success there heals the target for the first.
    releaseOne();
    await second.recordSuccess('openai/gpt-4o', 11_000);
    await settle();
    const after = await first.read(['openai/gpt-4o', 'azure/gpt-4o'], 11_000);
    expect(after.get('openai/gpt-4o')?.state).toBe('healthy');
    expect(after.get('azure/gpt-4o')?.inFlight).toBe(1);
    releaseTwo();
  });

  it('a half-open probe is claimed by exactly one of several racing nodes', async () => {
    const prefix = newPrefix();
    const first = createRedisHealthStore(await connect(prefix), contractPolicy);
    const second = createRedisHealthStore(await connect(prefix), contractPolicy);
    await first.recordFailure('openai#2', { code: 'upstream_rate_limited' }, 0);
    const claims = await Promise.all(Array.from({ length: 20 }, (_, index) => (index % 2 === 0 ? first : second).claimProbe('openai#2', 1000)));
    expect(claims.filter((claimed) => claimed === true)).toHaveLength(1);
  });

  it("a dead node's in-flight lease stops counting when it runs out, not a millisecond earlier", async () => {
    const prefix = newPrefix();
    const leaseMs = 60_000;
    const crashing = await connect(prefix);
    const crashingStore = createRedisHealthStore(crashing, contractPolicy, { inFlightLeaseMs: leaseMs });
    await crashingStore.acquire('openai/gpt-4o', 0);
    // The acquire is not awaited by the store: a read of the same node comes after it, so once
    // this answers, the lease is in Redis (closing at once could drop a command still queued).
    expect((await crashingStore.read(['openai/gpt-4o'], 0)).get('openai/gpt-4o')?.inFlight).toBe(1);
    // The node dies without releasing.
    await crashing.close();
    const survivor = createRedisHealthStore(await connect(prefix), contractPolicy, { inFlightLeaseMs: leaseMs });
    expect((await survivor.read(['openai/gpt-4o'], leaseMs - 1)).get('openai/gpt-4o')?.inFlight).toBe(1);
    expect((await survivor.read(['openai/gpt-4o'], leaseMs)).get('openai/gpt-4o')?.inFlight).toBe(0);
    // The next acquire prunes it: only the new lease is left in the set.
    await survivor.acquire('openai/gpt-4o', leaseMs);
    const redis = await connect(prefix);
    expect(await redis.command.zcard(`${prefix}{health}:in-flight:openai%2Fgpt-4o`)).toBe(1);
  });

  it('keys sit under the prefix and the {health} tag, and vanish when nothing is known any more', async () => {
    const prefix = newPrefix();
    const redis = await connect(prefix);
    const store = createRedisHealthStore(redis, contractPolicy, { inFlightLeaseMs: 600_000 });
    const keys = () => keysUnder(redis.command, prefix);
    // A model name may hold ':' (ollama's llama3:8b); encoded, it cannot run into a key's parts.
    const id = 'ollama/llama3:8b';

    await store.read([id], 0);
    await store.claimProbe(id, 0);
    expect(await keys()).toEqual([]);

    const release = await store.acquire(id, 0);
    expect(await keys()).toEqual([`${prefix}{health}:in-flight:ollama%2Fllama3%3A8b`]);
    expect(await redis.command.pttl(`${prefix}{health}:in-flight:ollama%2Fllama3%3A8b`)).toBeGreaterThan(590_000);
    release();
    await settle();
    expect(await keys()).toEqual([]);

    // Cooling for 1 s, then forgotten maxMs (8 s) after that if no one tries it again.
    await store.recordFailure(id, { code: 'upstream_error' }, 0);
    const target = `${prefix}{health}:target:ollama%2Fllama3%3A8b`;
    expect(await keys()).toEqual([target]);
    expect(await redis.command.pttl(target)).toBeGreaterThan(8_500);
    expect(await redis.command.pttl(target)).toBeLessThanOrEqual(9_000);
    await store.recordSuccess(id, 2000);
    expect(await keys()).toEqual([]);

    // A disabled key is kept until reset, however long.
    await store.recordFailure(id, { code: 'upstream_auth_failed', disable: true }, 0);
    expect(await redis.command.pttl(target)).toBe(-1);
    await store.reset(id);
    expect(await keys()).toEqual([]);
  });

  it("a pool of one goes on this node's recent healthy read: another node's failure reaches it recentHealthMs later, its count reaches Redis all the same", async () => {
    const prefix = newPrefix();
    const first = createRedisHealthStore(await connect(prefix), contractPolicy, { recentHealthMs: 1000 });
    const second = createRedisHealthStore(await connect(prefix), contractPolicy);
    const ids = ['openai/m', 'openai#1'];
    (await first.readAndAcquire(ids, 'openai/m', 10_000)).release();
    await second.recordFailure('openai#1', { code: 'upstream_auth_failed', disable: true }, 10_100);
    const recent = await first.readAndAcquire(ids, 'openai/m', 10_999);
    expect(recent.health.get('openai#1')?.state).toBe('healthy');
    await settle();
    expect((await second.read(['openai/m'], 10_999)).get('openai/m')?.inFlight).toBe(1);
    recent.release();
    await settle();
    expect((await second.read(['openai/m'], 10_999)).get('openai/m')?.inFlight).toBe(0);
    // recentHealthMs after the read it went on, it reads again; a read with a target not healthy is not kept.
    const later = await first.readAndAcquire(ids, 'openai/m', 11_000);
    expect(later.health.get('openai#1')?.state).toBe('disabled');
    later.release();
    await second.reset('openai#1');
    const again = await first.readAndAcquire(ids, 'openai/m', 11_001);
    expect(again.health.get('openai#1')?.state).toBe('healthy');
    again.release();
  });

  it('answers in the same turn only on a recent healthy read, counting nothing otherwise', async () => {
    const prefix = newPrefix();
    const store = createRedisHealthStore(await connect(prefix), contractPolicy, { recentHealthMs: 1000 });
    const ids = ['now/m', 'now#1'];
    expect(store.readAndAcquireNow?.(ids, 'now/m', 0)).toBeUndefined();
    (await store.readAndAcquire(ids, 'now/m', 0)).release();
    const sameTurn = store.readAndAcquireNow?.(ids, 'now/m', 500);
    expect(sameTurn?.health.get('now#1')?.state).toBe('healthy');
    await settle();
    expect((await store.read(['now/m'], 500)).get('now/m')?.inFlight).toBe(1);
    sameTurn?.release();
    await settle();
    expect((await store.read(['now/m'], 500)).get('now/m')?.inFlight).toBe(0);
    // Too old, or after this node recorded health: nothing in the same turn, and nothing counted.
    expect(store.readAndAcquireNow?.(ids, 'now/m', 1000)).toBeUndefined();
    (await store.readAndAcquire(ids, 'now/m', 1000)).release();
    await store.recordSuccess('now/m', 1001);
    expect(store.readAndAcquireNow?.(ids, 'now/m', 1002)).toBeUndefined();
    await settle();
    expect((await store.read(['now/m'], 1002)).get('now/m')?.inFlight).toBe(0);
  });

  it('a pool of one reads again at once after this node recorded a failure (also one recorded while its read was out), and with recentHealthMs 0 every time', async () => {
    const prefix = newPrefix();
    const store = createRedisHealthStore(await connect(prefix), contractPolicy, { recentHealthMs: 1000 });
    (await store.readAndAcquire(['a/m'], 'a/m', 0)).release();
    await store.recordFailure('a/m', { code: 'upstream_unavailable' }, 100);
    expect((await store.readAndAcquire(['a/m'], 'a/m', 200)).health.get('a/m')?.state).toBe('cooling');

    // A read still out when the node records a failure is not kept: it may have been answered before the failure was written.
    const racing = createRedisHealthStore(await connect(prefix), contractPolicy, { recentHealthMs: 1000 });
    const [before] = await Promise.all([racing.readAndAcquire(['c/m'], 'c/m', 0), racing.recordFailure('c/m', { code: 'upstream_unavailable' }, 0)]);
    expect(before.health.get('c/m')?.state).toBe('healthy');
    before.release();
    const after = await racing.readAndAcquire(['c/m'], 'c/m', 1);
    expect(after.health.get('c/m')?.state).toBe('cooling');
    after.release();

    const strict = createRedisHealthStore(await connect(prefix), contractPolicy, { recentHealthMs: 0 });
    const other = createRedisHealthStore(await connect(prefix), contractPolicy);
    (await strict.readAndAcquire(['b/m'], 'b/m', 0)).release();
    await other.recordFailure('b/m', { code: 'upstream_unavailable' }, 1);
    expect((await strict.readAndAcquire(['b/m'], 'b/m', 2)).health.get('b/m')?.state).toBe('cooling');
    expect(() => createRedisHealthStore({} as RedisConnections, contractPolicy, { recentHealthMs: -1 })).toThrow(/recentHealthMs/);
  });

  it('a target nobody probed is forgotten maxMs after its cooldown: the exponent starts again', async () => {
    const prefix = newPrefix();
    const redis = await connect(prefix);
    const store = createRedisHealthStore(redis, { initialMs: 100, maxMs: 200, probeTimeoutMs: 50 });
    await store.recordFailure('a/m', { code: 'upstream_error' }, Date.now());
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await store.read(['a/m'], Date.now())).get('a/m')?.state).toBe('healthy');
    expect(await store.recordFailure('a/m', { code: 'upstream_error' }, 0)).toMatchObject({ consecutiveFailures: 1, coolingUntil: 100 });
  });
});

describe.skipIf(!backends[0]?.available)('redis health store with a Redis slow to answer', () => {
  // Far above a stall of the test's own process on a loaded machine, so that "did not wait for
  // Redis" (under half of it) and "waited" (all of it) cannot be mistaken for each other.
  const answerDelayMs = 1000;
  it('counts a request in flight without waiting for the answer, and a later read of the node counts it', async () => {
    const single = backends[0]!.target;
    if (single.url === undefined) throw new Error('the first backend is the single Redis');
    const proxy = await startRedisProxy(single.url);
    const prefix = uniqueKeyPrefix();
    // Commands wait for the delayed answers, not time out (the default is 1000 ms).
    const redis = createRedisConnections({ url: proxy.url, keyPrefix: prefix, logger: createLogger('silent'), commandTimeoutMs: 3 * answerDelayMs });
    try {
      await redis.ready();
      const store = createRedisHealthStore(redis, contractPolicy);
      proxy.setAnswerDelay(answerDelayMs);
      const started = performance.now();
      const release = await store.acquire('a/m', 0);
      expect(performance.now() - started).toBeLessThan(answerDelayMs / 2);
      // Sent after the acquire on the same connection: Redis has counted it by then.
      expect((await store.read(['a/m'], 0)).get('a/m')?.inFlight).toBe(1);
      release();
      proxy.setAnswerDelay(0);
      await settle();
      expect((await store.read(['a/m'], 0)).get('a/m')?.inFlight).toBe(0);

      // A pool of one waits for Redis on its first read only; then it goes on that read (decision 0033).
      proxy.setAnswerDelay(answerDelayMs);
      const first = performance.now();
      (await store.readAndAcquire(['b/m'], 'b/m', 0)).release();
      expect(performance.now() - first).toBeGreaterThanOrEqual(answerDelayMs - 50);
      const second = performance.now();
      const { health, release: releaseSecond } = await store.readAndAcquire(['b/m'], 'b/m', 10);
      expect(performance.now() - second).toBeLessThan(answerDelayMs / 2);
      expect(health.get('b/m')?.state).toBe('healthy');
      releaseSecond();
      proxy.setAnswerDelay(0);
      await new Promise((resolve) => setTimeout(resolve, answerDelayMs + 50));
    } finally {
      await deleteKeysUnder(redis.command, prefix).catch(() => undefined);
      await redis.close();
      await proxy.close();
    }
  });
});

describe('redis health store without Redis', () => {
  it('fails at once with a retryable store_unavailable instead of hanging', async () => {
    const dead = await connect(uniqueKeyPrefix(), { url: `redis://127.0.0.1:${String(await unusedPort())}` });
    const store = createRedisHealthStore(dead, contractPolicy);
    const started = Date.now();
    await expect(store.read(['a/m'], 0)).rejects.toMatchObject({ code: 'store_unavailable', retryable: true });
    await expect(store.acquire('a/m', 0)).rejects.toMatchObject({ code: 'store_unavailable' });
    await expect(store.recordFailure('a/m', { code: 'upstream_error' }, 0)).rejects.toMatchObject({ code: 'store_unavailable' });
    await expect(store.reset('a/m')).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('refuses a lease duration that is not a positive whole number of ms', async () => {
    const dead = await connect(uniqueKeyPrefix(), { url: `redis://127.0.0.1:${String(await unusedPort())}` });
    expect(() => createRedisHealthStore(dead, contractPolicy, { inFlightLeaseMs: 0 })).toThrow(RangeError);
    expect(() => createRedisHealthStore(dead, contractPolicy, { inFlightLeaseMs: 1.5 })).toThrow(RangeError);
  });
});
