// Node presence is what decides whose connections a cluster lists and what readiness reports:
// a node is live while it heartbeats, leaves at once when it stops cleanly, vanishes within its
// TTL when it dies without cleanup (its owned keys with it), and a presence on a Redis that is not
// there fails fast instead of hanging.
import { beforeAll, afterEach, describe, expect, it } from 'vitest';
import { redisBackends, type RedisBackend, uniqueKeyPrefix, deleteKeysUnder } from '../../test/support/redis.js';
import { unusedPort } from '../../test/support/tcp.js';
import { createLogger } from '../observability/logger.js';
import { createNodePresence, nodeKey, presenceOwnedKey, type NodePresence } from './node-presence.js';
import { createRedisConnections, type RedisConnections, type RedisTarget } from './connection.js';

const backends = await redisBackends();
/** The backend the running describe block tests (the blocks run one after another). */
let backend: RedisBackend = backends[0]!;
const logger = createLogger('silent');
const opened: { redis: RedisConnections; presences: NodePresence[] }[] = [];
let prefix = '';

async function open(target: RedisTarget = backend.target): Promise<RedisConnections> {
  const redis = createRedisConnections({ ...target, keyPrefix: prefix, logger });
  opened.push({ redis, presences: [] });
  return redis;
}

afterEach(async () => {
  for (const { redis, presences } of opened.splice(0)) {
    for (const presence of presences) await presence.stop();
    if (redis.healthy) await deleteKeysUnder(redis.command, prefix);
    await redis.close();
  }
});

async function waitUntil(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs.toString()} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

for (const each of backends) describe.skipIf(!each.available)(`node presence (${each.name})`, () => {
  beforeAll(() => {
    backend = each;
  });
  it('lists the nodes that heartbeat, and drops one that stops cleanly at once', async () => {
    prefix = uniqueKeyPrefix();
    const redis = await open();
    await redis.ready();
    const first = createNodePresence({ redis, nodeId: 'b', logger });
    const second = createNodePresence({ redis, nodeId: 'a', logger });
    opened[0]?.presences.push(first, second);
    await first.beat();
    await second.beat();
    expect(await first.liveNodes()).toEqual(['a', 'b']);
    expect(first.registered).toBe(true);
    await second.stop();
    expect(await first.liveNodes()).toEqual(['b']);
    expect(second.registered).toBe(false);
    expect(await redis.command.exists(nodeKey(prefix, 'a'))).toBe(0);
  });

  it('a node that dies without cleanup vanishes within its TTL, its owned keys with it', async () => {
    prefix = uniqueKeyPrefix();
    const redis = await open();
    await redis.ready();
    // Made as every owned key must be: in the presence's slot, which a Redis Cluster requires.
    const owned = presenceOwnedKey(prefix, 'owned-by-dying');
    await redis.command.hset(owned, 'k', 'v');
    // A TTL long against a stall of this process on a loaded machine, short against the test's wait.
    const ttlMs = 1000;
    const watcher = createNodePresence({ redis, nodeId: 'watcher', ttlMs, heartbeatIntervalMs: 100, logger });
    const dying = createNodePresence({ redis, nodeId: 'dying', ttlMs, heartbeatIntervalMs: 100, ownedKeys: [owned], logger });
    opened[0]?.presences.push(watcher, dying);
    await dying.beat();
    await watcher.beat();
    const ttl = await redis.command.pttl(owned);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(ttlMs);

    await dying.stop({ deregister: false });
    const stoppedAt = performance.now();
    expect(await watcher.liveNodes()).toEqual(['dying', 'watcher']);
    await waitUntil(async () => (await watcher.liveNodes()).length === 1, 3 * ttlMs);
    expect(performance.now() - stoppedAt).toBeLessThan(ttlMs + 600);
    expect(await redis.command.exists(owned)).toBe(0);
  });

  it('keeps itself live by its own heartbeat', async () => {
    prefix = uniqueKeyPrefix();
    const redis = await open();
    await redis.ready();
    // Heartbeats 0.1 s apart keep a 1 s TTL: a stall of up to 0.9 s on a loaded machine is survived.
    const presence = createNodePresence({ redis, nodeId: 'alive', ttlMs: 1000, heartbeatIntervalMs: 100, logger });
    opened[0]?.presences.push(presence);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(await presence.liveNodes()).toEqual(['alive']);
    expect(presence.registered).toBe(true);
  });

  it('on a Redis that is not there: not registered, and reads reject within a second', async () => {
    prefix = uniqueKeyPrefix();
    const redis = await open({ url: `redis://127.0.0.1:${(await unusedPort()).toString()}` });
    const presence = createNodePresence({ redis, nodeId: 'alone', logger });
    opened[0]?.presences.push(presence);
    const startedAt = performance.now();
    await expect(presence.liveNodes()).rejects.toThrow();
    await expect(presence.beat()).rejects.toThrow();
    expect(performance.now() - startedAt).toBeLessThan(1000);
    expect(presence.registered).toBe(false);
  });

  it('refuses a heartbeat interval that is not below the TTL', async () => {
    prefix = uniqueKeyPrefix();
    const redis = await open({ url: `redis://127.0.0.1:${(await unusedPort()).toString()}` });
    expect(() => createNodePresence({ redis, nodeId: 'x', ttlMs: 100, heartbeatIntervalMs: 100, logger })).toThrow(RangeError);
  });
});
