// What only the Redis LimitState promises, beyond the contract (limit-state-contract.test.ts):
// several nodes share one budget and racing admits never take more than it holds; a node that died
// holding a concurrency slot frees it when its lease runs out; idle keys expire by themselves,
// all under the prefix and one Cluster hash tag; and a dead Redis fails an admit at once.
import { beforeAll, afterEach, describe, expect, it } from 'vitest';
import { redisBackends, type RedisBackend, uniqueKeyPrefix, keysUnder, deleteKeysUnder } from '../../test/support/redis.js';
import { unusedPort } from '../../test/support/tcp.js';
import { createRedisConnections, type RedisConnections, type RedisTarget } from '../redis/connection.js';
import { SluiceError } from '../errors/sluice-error.js';
import { createLogger } from '../observability/logger.js';
import { createLimiter } from './create-limiter.js';
import type { LimitCheck, QuotaCheck, RateCheck } from './limit-state.js';
import { createRedisLimitState } from './redis-limit-state.js';

const backends = await redisBackends();
/** The backend the running describe block tests (the blocks run one after another). */
let backend: RedisBackend = backends[0]!;

const rpm = (key: string, limit: number): RateCheck => ({ kind: 'requests', key, limit, label: 'key.requestsPerMinute', periodMs: 60_000 });
const tpm = (key: string, limit: number): RateCheck => ({ kind: 'tokens', key, limit, label: 'key.tokensPerMinute', periodMs: 60_000 });
const streams = (key: string, limit: number): LimitCheck => ({ kind: 'concurrency', key, limit, label: 'key.concurrentStreams' });

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

const keysOf = (redis: RedisConnections, prefix: string) => keysUnder(redis.command, prefix);

afterEach(async () => {
  const cleaner = backend.available && prefixes.length > 0 ? await connect(uniqueKeyPrefix()) : undefined;
  for (const prefix of prefixes.splice(0)) if (cleaner) await deleteKeysUnder(cleaner.command, prefix);
  await Promise.all(opened.splice(0).map((redis) => redis.close()));
});

for (const each of backends) describe.skipIf(!each.available)(`redis limit state across nodes (${each.name})`, () => {
  beforeAll(() => {
    backend = each;
  });
  it('two nodes share one budget: 20 racing admits of 10 per minute admit exactly 10', async () => {
    const prefix = newPrefix();
    const first = createRedisLimitState(await connect(prefix));
    const second = createRedisLimitState(await connect(prefix));
    const nodeFor = (index: number) => (index % 2 === 0 ? first : second);
    const now = Date.now();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, index) => nodeFor(index).admit([rpm('key:k1:rpm', 10), streams('key:k1:streams', 15)], now, `lease-${index}`)),
    );
    const admitted = results.filter((result) => result.outcome === 'admitted');
    expect(admitted).toHaveLength(10);
    // The refused ten took no slot either: five more streams fit, on either node.
    for (let index = 0; index < 5; index += 1) expect(await nodeFor(index).admit([streams('key:k1:streams', 15)], now, `more-${index}`)).toEqual({ outcome: 'admitted' });
    expect(await first.admit([streams('key:k1:streams', 15)], now, 'one-too-many')).toMatchObject({ outcome: 'refused' });
  });

  it('a slot taken on one node is freed by a settle there, and quotas charged on one count on the other', async () => {
    const prefix = newPrefix();
    const options = { now: () => Date.now(), seedQuota: async () => 0 };
    const first = createLimiter({ ...options, state: createRedisLimitState(await connect(prefix)) });
    const second = createLimiter({ ...options, state: createRedisLimitState(await connect(prefix)) });
    const who = { userId: 'ada', userLimits: { concurrentStreams: 1, dailyTokens: 100 }, keyLimits: {} };
    const onFirst = await first.admit(who);
    await expect(second.admit(who)).rejects.toMatchObject({ code: 'rate_limited', message: expect.stringContaining('user.concurrentStreams') as unknown });
    await onFirst.settle(60);
    const onSecond = await second.admit(who);
    await onSecond.settle(40);
    await expect(first.admit(who)).rejects.toMatchObject({ code: 'quota_exceeded' });
  });

  it("a crashed node's lease runs out and frees its slot, not a millisecond earlier", async () => {
    const prefix = newPrefix();
    const leaseMs = 60_000;
    const crashing = await connect(prefix);
    const now = Date.now();
    expect(await createRedisLimitState(crashing, { concurrencyLeaseMs: leaseMs }).admit([streams('user:ada:streams', 1)], now, 'crashed')).toEqual({ outcome: 'admitted' });
    // The node dies without settling.
    await crashing.close();
    const survivor = createRedisLimitState(await connect(prefix), { concurrencyLeaseMs: leaseMs });
    expect(await survivor.admit([streams('user:ada:streams', 1)], now + leaseMs - 1, 'waiting-1')).toMatchObject({ outcome: 'refused', retryAfterMs: 1000 });
    expect(await survivor.admit([streams('user:ada:streams', 1)], now + leaseMs, 'waiting-2')).toEqual({ outcome: 'admitted' });
  });

  it('every key is under the prefix and the {limits} hash tag, and idle ones expire by themselves', async () => {
    const prefix = newPrefix();
    const redis = await connect(prefix);
    const state = createRedisLimitState(redis, { concurrencyLeaseMs: 600_000 });
    const now = Date.now();
    const dayEnd = now + 3_600_000;
    const daily: QuotaCheck = { kind: 'quota', key: 'user:ada:day:x', limit: 1000, label: 'user.dailyTokens', periodStart: now - 1000, periodEnd: dayEnd };
    await state.seed(daily, 10, now);
    await state.admit([rpm('user:ada:rpm', 60), tpm('user:ada:tpm', 600), streams('user:ada:streams', 2), daily], now, 'lease-1');
    await state.settle([tpm('user:ada:tpm', 600), streams('user:ada:streams', 2), daily], 300, now, 'lease-1');
    await state.admit([streams('user:ada:streams', 2)], now, 'lease-2');

    const tagged = (key: string) => `${prefix}{limits}:${key}`;
    expect(await keysOf(redis, prefix)).toEqual([tagged('user:ada:day:x'), tagged('user:ada:rpm'), tagged('user:ada:streams'), tagged('user:ada:tpm')].sort());
    const ttl = async (key: string) => redis.command.pttl(tagged(key));
    // One request at 1 per second: full again in 1 s. 300 tokens at 10 per second: in 30 s.
    expect(await ttl('user:ada:rpm')).toBeGreaterThan(900);
    expect(await ttl('user:ada:rpm')).toBeLessThanOrEqual(1000);
    expect(await ttl('user:ada:tpm')).toBeGreaterThan(29_000);
    expect(await ttl('user:ada:tpm')).toBeLessThanOrEqual(30_000);
    expect(await ttl('user:ada:streams')).toBeGreaterThan(590_000);
    expect(await ttl('user:ada:streams')).toBeLessThanOrEqual(600_000);
    expect(await ttl('user:ada:day:x')).toBeGreaterThan(3_590_000);
    expect(await ttl('user:ada:day:x')).toBeLessThanOrEqual(3_600_000);
    expect(await redis.command.get(tagged('user:ada:day:x'))).toBe('310');
    expect(await redis.command.zrange(tagged('user:ada:streams'), 0, -1)).toEqual(['lease-2']);

    // A settle that frees the last slot leaves no empty set behind.
    await state.settle([streams('user:ada:streams', 2)], 0, now, 'lease-2');
    expect(await redis.command.exists(tagged('user:ada:streams'))).toBe(0);
  });

  it('a dead Redis refuses an admit at once, with a retryable error, instead of hanging', async () => {
    const dead = await connect(uniqueKeyPrefix(), { url: `redis://127.0.0.1:${String(await unusedPort())}` });
    const state = createRedisLimitState(dead);
    const started = Date.now();
    const error: unknown = await state.admit([rpm('key:k1:rpm', 10)], started, 'lease-1').catch((thrown: unknown) => thrown);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as SluiceError).code).toBe('store_unavailable');
    expect((error as SluiceError).retryable).toBe(true);
    await expect(state.settle([tpm('key:k1:tpm', 10)], 5, started, 'lease-1')).rejects.toMatchObject({ code: 'store_unavailable' });
  });

  it('refuses a lease duration that is not a positive whole number of ms', async () => {
    const redis = await connect(uniqueKeyPrefix(), { url: `redis://127.0.0.1:${String(await unusedPort())}` });
    expect(() => createRedisLimitState(redis, { concurrencyLeaseMs: 0 })).toThrow(RangeError);
    expect(() => createRedisLimitState(redis, { concurrencyLeaseMs: 1.5 })).toThrow(RangeError);
  });
});
