// The contract every Hub keeps, run against the memory hub and the Redis (cluster) hub alike, so
// the app can swap one for the other by config: pushes reach exactly the targeted connections and
// count them exactly; one sequence orders user and broadcast pushes, so replay after a
// Last-Event-ID merges both, in order, each once; retention by count and by age; disconnect closes
// and removes; connection lists and counts are exact. What only one implementation promises lives
// in its own test file (memory-hub.test.ts, redis-hub/redis-hub.test.ts).
import { afterEach, describe, expect, it } from 'vitest';
import { redisBackends, type RedisBackend, uniqueKeyPrefix, deleteKeysUnder } from '../../test/support/redis.js';
import { createRedisConnections, type RedisConnections } from '../redis/connection.js';
import { createLogger } from '../observability/logger.js';
import type { Hub, HubCloseReason, HubConnection, HubRetention, PushMessage } from './hub.js';
import { isPushEventName } from './hub.js';
import { createMemoryHub } from './memory-hub.js';
import { createRedisHub, type RedisHub } from './redis-hub/redis-hub.js';

const backends = await redisBackends();
const logger = createLogger('silent');

interface HubOptions {
  readonly now: () => number;
  readonly nodeId?: string;
  readonly retention?: Partial<HubRetention>;
}

interface Implementation {
  readonly name: string;
  readonly skip: boolean;
  /** A new hub of its own (for Redis: its own connections and key prefix). */
  create(options: HubOptions): Promise<Hub>;
  /** Closes what create opened and deletes what it left in Redis. */
  cleanup(): Promise<void>;
}

const deleteKeys = (redis: RedisConnections, prefix: string) => deleteKeysUnder(redis.command, prefix);

function redisImplementation(backend: RedisBackend): Implementation {
  const opened: { hub: RedisHub; redis: RedisConnections; prefix: string }[] = [];
  return {
    name: `redis hub (${backend.name})`,
    skip: !backend.available,
    async create(options) {
      const prefix = uniqueKeyPrefix();
      const redis = createRedisConnections({ ...backend.target, keyPrefix: prefix, logger });
      await redis.ready();
      const hub = createRedisHub({ redis, nodeId: options.nodeId ?? 'contract-node', now: options.now, logger, ...(options.retention ? { retention: options.retention } : {}) });
      opened.push({ hub, redis, prefix });
      await hub.ready();
      return hub;
    },
    async cleanup() {
      for (const { hub, redis, prefix } of opened.splice(0)) {
        await hub.close();
        await deleteKeys(redis, prefix);
        await redis.close();
      }
    },
  };
}

const implementations: Implementation[] = [
  { name: 'memory hub', skip: false, create: async (options) => createMemoryHub(options), cleanup: async () => undefined },
  ...backends.map(redisImplementation),
];

interface FakeConnection {
  readonly connection: HubConnection;
  readonly received: PushMessage[];
  readonly closes: HubCloseReason[];
}

let nextId = 0;

function fake(userId: string, behaviour: { deliver?: (message: PushMessage) => boolean; openedAt?: number } = {}): FakeConnection {
  const received: PushMessage[] = [];
  const closes: HubCloseReason[] = [];
  const connection: HubConnection = {
    id: `c${(nextId++).toString()}`,
    userId,
    transport: 'sse',
    openedAt: behaviour.openedAt ?? 0,
    deliver: (message) => {
      if (behaviour.deliver) return behaviour.deliver(message);
      received.push(message);
      return true;
    },
    close: (reason) => closes.push(reason),
  };
  return { connection, received, closes };
}

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let time = start;
  return { now: () => time, advance: (ms) => (time += ms) };
}

async function connect(hub: Hub, ...connections: FakeConnection[]): Promise<void> {
  for (const { connection } of connections) await hub.register(connection);
}

for (const implementation of implementations) {
  const create = (options: HubOptions): Promise<Hub> => implementation.create(options);

  describe.skipIf(implementation.skip)(`${implementation.name}: push`, () => {
    afterEach(() => implementation.cleanup());

    it('reaches only the targeted user, counts their connections exactly, and gives increasing ids', async () => {
      const hub = await create({ now: clock().now, nodeId: 'n1' });
      const alice1 = fake('alice');
      const alice2 = fake('alice');
      const bob = fake('bob');
      await connect(hub, alice1, alice2, bob);

      const first = await hub.push({ users: ['alice'] }, 'note', { n: 1 });
      const second = await hub.push({ users: ['alice'] }, 'note', { n: 2 });
      expect(first.connections).toBe(2);
      expect(Number(second.id)).toBeGreaterThan(Number(first.id));
      expect(alice1.received.map((message) => message.json)).toEqual(['{"n":1}', '{"n":2}']);
      expect(alice2.received.map((message) => message.id)).toEqual([first.id, second.id]);
      expect(bob.received).toEqual([]);
    });

    it('counts a user named twice once, and a named user with no connection as zero', async () => {
      const hub = await create({ now: clock().now });
      const alice = fake('alice');
      const bob = fake('bob');
      await connect(hub, alice, bob);
      const result = await hub.push({ users: ['alice', 'alice', 'bob', 'nobody'] }, 'note', null);
      expect(result.connections).toBe(2);
      expect(alice.received).toHaveLength(1);
    });

    it('broadcasts to every connection', async () => {
      const hub = await create({ now: clock().now });
      const everyone = [fake('a'), fake('a'), fake('b'), fake('c')];
      await connect(hub, ...everyone);
      expect((await hub.push({ all: true }, 'deploy', 'v2')).connections).toBe(4);
      for (const { received } of everyone) expect(received.map((message) => message.json)).toEqual(['"v2"']);
    });

    it('does not count a connection that refused or threw, and still reaches the others', async () => {
      const hub = await create({ now: clock().now });
      const refusing = fake('a', { deliver: () => false });
      const throwing = fake('a', {
        deliver: () => {
          throw new Error('transport bug');
        },
      });
      const fine = fake('a');
      await connect(hub, refusing, throwing, fine);
      expect((await hub.push({ users: ['a'] }, 'x', 1)).connections).toBe(1);
      expect(fine.received).toHaveLength(1);
    });

    it('refuses event names that could break a frame or imitate the gateway, and data JSON cannot hold', async () => {
      const hub = await create({ now: clock().now });
      await expect(hub.push({ all: true }, 'bad\nevent', 1)).rejects.toThrow(TypeError);
      await expect(hub.push({ all: true }, 'error', 1)).rejects.toThrow(TypeError);
      await expect(hub.push({ all: true }, 'x', undefined)).rejects.toThrow(TypeError);
      await expect(hub.push({ all: true }, 'x', 10n)).rejects.toThrow(TypeError);
      expect(isPushEventName('order.shipped:v1-x_y')).toBe(true);
      expect(isPushEventName('x'.repeat(65))).toBe(false);
      expect(isPushEventName('close')).toBe(false);
    });

    it('delivers plain data that survives a JSON round trip (what a cluster hub publishes)', async () => {
      const hub = await create({ now: clock().now });
      const alice = fake('alice');
      await connect(hub, alice);
      await hub.push({ users: ['alice'] }, 'note', { text: 'héllo\nworld "quoted" \\ </script>' });
      const message = alice.received[0];
      expect(JSON.parse(JSON.stringify(message)) as unknown).toEqual(message);
      expect(JSON.parse(message?.json ?? '') as unknown).toEqual({ text: 'héllo\nworld "quoted" \\ </script>' });
      expect(Object.keys(message ?? {})).toEqual(['id', 'event', 'json', 'pushedAt']);
    });
  });

  describe.skipIf(implementation.skip)(`${implementation.name}: replay`, () => {
    afterEach(() => implementation.cleanup());

    it('merges the user\'s own pushes and broadcasts after the id, in order, each once, and nobody else\'s', async () => {
      const hub = await create({ now: clock().now });
      const ids: string[] = [];
      ids.push((await hub.push({ users: ['alice'] }, 'a', 0)).id);
      ids.push((await hub.push({ all: true }, 'b', 1)).id);
      await hub.push({ users: ['bob'] }, 'c', 2);
      ids.push((await hub.push({ users: ['alice', 'bob'] }, 'd', 3)).id);
      ids.push((await hub.push({ all: true }, 'e', 4)).id);

      const all = await hub.replay('alice', '0');
      expect(all.map((message) => message.id)).toEqual(ids);
      expect(all.map((message) => message.event)).toEqual(['a', 'b', 'd', 'e']);
      const afterSecond = await hub.replay('alice', ids[1] ?? '');
      expect(afterSecond.map((message) => message.event)).toEqual(['d', 'e']);
      expect(await hub.replay('alice', ids[3] ?? '')).toEqual([]);
      expect((await hub.replay('carol', '0')).map((message) => message.event)).toEqual(['b', 'e']);
    });

    it('replays exactly what was delivered live', async () => {
      const hub = await create({ now: clock().now });
      const alice = fake('alice');
      await connect(hub, alice);
      await hub.push({ users: ['alice'] }, 'a', { n: 1 });
      await hub.push({ all: true }, 'b', [1, 'two']);
      expect(await hub.replay('alice', '0')).toEqual(alice.received);
    });

    it('keeps the newest retention.count messages per user, broadcasts included', async () => {
      const hub = await create({ now: clock().now, retention: { count: 3 } });
      for (let index = 0; index < 5; index++) await hub.push({ users: ['alice'] }, 'own', index);
      await hub.push({ all: true }, 'all', 'x');
      const replayed = await hub.replay('alice', '0');
      expect(replayed.map((message) => `${message.event}:${message.json}`)).toEqual(['own:3', 'own:4', 'all:"x"']);
    });

    it('drops messages older than retention.ageMs', async () => {
      const time = clock();
      const hub = await create({ now: time.now, retention: { ageMs: 1000 } });
      await hub.push({ users: ['alice'] }, 'old', 1);
      await hub.push({ all: true }, 'old-all', 1);
      time.advance(600);
      await hub.push({ users: ['alice'] }, 'new', 2);
      time.advance(600);
      expect((await hub.replay('alice', '0')).map((message) => message.event)).toEqual(['new']);
      time.advance(600);
      expect(await hub.replay('alice', '0')).toEqual([]);
    });

    it('keeps nothing when retention.count is 0', async () => {
      const hub = await create({ now: clock().now, retention: { count: 0 } });
      await hub.push({ users: ['alice'] }, 'x', 1);
      await hub.push({ all: true }, 'x', 1);
      expect(await hub.replay('alice', '0')).toEqual([]);
    });

    it('replays everything retained for an id ahead of the sequence (a client from before a restart)', async () => {
      const hub = await create({ now: () => 1000 });
      await hub.push({ users: ['alice'] }, 'x', 1);
      expect(await hub.replay('alice', '999999999999')).toHaveLength(1);
    });

    it('refuses an id that is not digits', async () => {
      const hub = await create({ now: clock().now });
      await expect(hub.replay('alice', '12a')).rejects.toThrow(TypeError);
      await expect(hub.replay('alice', '')).rejects.toThrow(TypeError);
    });
  });

  describe.skipIf(implementation.skip)(`${implementation.name}: connections`, () => {
    afterEach(() => implementation.cleanup());

    it('lists connections oldest first with node and transport, and counts per user and total', async () => {
      const hub = await create({ now: clock().now, nodeId: 'node-a' });
      const newer = fake('bob', { openedAt: 20 });
      const older = fake('alice', { openedAt: 10 });
      const third = fake('alice', { openedAt: 30 });
      await connect(hub, newer, older, third);
      expect((await hub.connections()).map((info) => [info.userId, info.openedAt, info.node, info.transport])).toEqual([
        ['alice', 10, 'node-a', 'sse'],
        ['bob', 20, 'node-a', 'sse'],
        ['alice', 30, 'node-a', 'sse'],
      ]);
      expect((await hub.connections('alice')).map((info) => info.id)).toEqual([older.connection.id, third.connection.id]);
      expect(await hub.counts()).toEqual({ total: 3, byUser: { alice: 2, bob: 1 } });
    });

    it('unregisters once (unregister is idempotent) and refuses a duplicate id', async () => {
      const hub = await create({ now: clock().now });
      const alice = fake('alice');
      await hub.register(alice.connection);
      await expect(hub.register(alice.connection)).rejects.toThrow(/already registered/);
      await hub.unregister(alice.connection);
      await hub.unregister(alice.connection);
      expect(await hub.counts()).toEqual({ total: 0, byUser: {} });
      expect((await hub.push({ users: ['alice'] }, 'x', 1)).connections).toBe(0);
    });

    it('disconnect closes all of the user\'s connections and no one else\'s, and removes them', async () => {
      const hub = await create({ now: clock().now });
      const alice1 = fake('alice');
      const alice2 = fake('alice');
      const bob = fake('bob');
      await connect(hub, alice1, alice2, bob);
      expect(await hub.disconnect('alice')).toBe(2);
      expect(alice1.closes.map((reason) => reason.code)).toEqual(['disconnected']);
      expect(alice2.closes).toHaveLength(1);
      expect(bob.closes).toEqual([]);
      expect(await hub.counts()).toEqual({ total: 1, byUser: { bob: 1 } });
      expect(await hub.disconnect('alice')).toBe(0);
    });

    it('closeLocal closes every connection with shutting_down and leaves none', async () => {
      const hub = await create({ now: clock().now });
      const alice = fake('alice');
      const bob = fake('bob');
      await connect(hub, alice, bob);
      expect(await hub.closeLocal()).toBe(2);
      expect([...alice.closes, ...bob.closes].map((reason) => reason.code)).toEqual(['shutting_down', 'shutting_down']);
      expect(await hub.counts()).toEqual({ total: 0, byUser: {} });
    });

    it('counts a user named "__proto__" like any other', async () => {
      const hub = await create({ now: clock().now });
      await connect(hub, fake('__proto__'));
      const counts = await hub.counts();
      expect(Object.hasOwn(counts.byUser, '__proto__')).toBe(true);
      expect(JSON.parse(JSON.stringify(counts)) as unknown).toEqual({ total: 1, byUser: JSON.parse('{"__proto__":1}') as unknown });
    });
  });
}
