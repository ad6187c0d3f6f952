// What the cluster hub adds to the hub contract (hub-contract.test.ts), with three nodes in one
// process, each with its own Redis connections, sharing one Redis under a key prefix of the
// test's own: a push through any node reaches the user's connections on every node and counts
// them exactly; lists, counts and disconnect span nodes; replay works through another node; a
// node killed without cleanup drops out within its presence TTL and does not slow pushes down;
// with Redis unreachable every shared call rejects fast with store_unavailable while connections
// stay registered, and a node recovers by itself when Redis is back.
import { beforeAll, afterEach, describe, expect, it } from 'vitest';
import { redisBackends, type RedisBackend, uniqueKeyPrefix, deleteKeysUnder, startRedisProxy } from '../../../test/support/redis.js';
import { unusedPort } from '../../../test/support/tcp.js';
import { createRedisConnections, type RedisConnections } from '../../redis/connection.js';
import { SluiceError } from '../../errors/sluice-error.js';
import { createLogger } from '../../observability/logger.js';
import type { HubCloseReason, HubConnection, PushMessage } from '../hub.js';
import { createRedisHub, type RedisHub, type RedisHubOptions } from './redis-hub.js';

const backends = await redisBackends();
/** The backend the running describe block tests (the blocks run one after another). */
let backend: RedisBackend = backends[0]!;
const logger = createLogger('silent');

interface Node {
  readonly hub: RedisHub;
  readonly redis: RedisConnections;
}

interface FakeConnection {
  readonly connection: HubConnection;
  readonly received: PushMessage[];
  readonly closes: HubCloseReason[];
}

let nextId = 0;

function fake(userId: string, openedAt = 0): FakeConnection {
  const received: PushMessage[] = [];
  const closes: HubCloseReason[] = [];
  const connection: HubConnection = {
    id: `rc${(nextId++).toString()}`,
    userId,
    transport: 'ws',
    openedAt,
    deliver: (message) => {
      received.push(message);
      return true;
    },
    close: (reason) => closes.push(reason),
  };
  return { connection, received, closes };
}

/** Everything the tests opened, closed and deleted after each one. */
const opened: { nodes: Node[]; prefix: string; cleanup: (() => Promise<void>)[] } = { nodes: [], prefix: '', cleanup: [] };

const deleteKeys = (redis: RedisConnections, prefix: string) => deleteKeysUnder(redis.command, prefix);

async function startNode(nodeId: string, options: Partial<RedisHubOptions> & { url?: string } = {}): Promise<Node> {
  const target = options.url === undefined ? backend.target : { url: options.url };
  const redis = createRedisConnections({ ...target, keyPrefix: opened.prefix, logger });
  const hub = createRedisHub({ now: () => Date.now(), logger, ...options, redis, nodeId });
  const node = { hub, redis };
  opened.nodes.push(node);
  return node;
}

async function startCluster(options: Partial<RedisHubOptions> = {}): Promise<[Node, Node, Node]> {
  const nodes = [await startNode('node-1', options), await startNode('node-2', options), await startNode('node-3', options)] as const;
  for (const { hub } of nodes) await hub.ready();
  return [...nodes];
}

afterEach(async () => {
  for (const { hub, redis } of opened.nodes.splice(0)) {
    await hub.close();
    await redis.close();
  }
  for (const step of opened.cleanup.splice(0)) await step();
  if (backend.available && opened.prefix) {
    const redis = createRedisConnections({ ...backend.target, logger });
    await redis.ready();
    await deleteKeys(redis, opened.prefix);
    await redis.close();
  }
});

function freshPrefix(): void {
  opened.prefix = uniqueKeyPrefix();
}

/** Polls `check` (every 20 ms) until it stops throwing; rethrows its last failure after `timeoutMs`. */
async function eventually(check: () => Promise<void>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

async function expectUnavailable(call: Promise<unknown>): Promise<void> {
  const error: unknown = await call.then(
    () => undefined,
    (rejection: unknown) => rejection,
  );
  expect(error).toBeInstanceOf(SluiceError);
  expect((error as SluiceError).code).toBe('store_unavailable');
}

for (const each of backends) describe.skipIf(!each.available)(`redis hub: three nodes sharing one Redis (${each.name})`, () => {
  beforeAll(() => {
    backend = each;
  });
  it('a push through node 1 reaches the user on nodes 1 and 3, counted exactly, in one id order', async () => {
    freshPrefix();
    const [node1, node2, node3] = await startCluster();
    const aliceOn1 = fake('alice');
    const aliceOn3a = fake('alice');
    const aliceOn3b = fake('alice');
    const bobOn2 = fake('bob');
    await node1.hub.register(aliceOn1.connection);
    await node3.hub.register(aliceOn3a.connection);
    await node3.hub.register(aliceOn3b.connection);
    await node2.hub.register(bobOn2.connection);

    const toAlice = await node1.hub.push({ users: ['alice'] }, 'note', { n: 1 });
    expect(toAlice.connections).toBe(3);
    const toEveryone = await node2.hub.push({ all: true }, 'deploy', 'v2');
    expect(toEveryone.connections).toBe(4);
    const fromNode3 = await node3.hub.push({ users: ['bob', 'nobody'] }, 'note', { n: 2 });
    expect(fromNode3.connections).toBe(1);

    // One sequence across nodes: ids increase whichever node took the push.
    expect(Number(toEveryone.id)).toBeGreaterThan(Number(toAlice.id));
    expect(Number(fromNode3.id)).toBeGreaterThan(Number(toEveryone.id));
    for (const alice of [aliceOn1, aliceOn3a, aliceOn3b]) expect(alice.received.map((message) => message.id)).toEqual([toAlice.id, toEveryone.id]);
    expect(bobOn2.received.map((message) => message.id)).toEqual([toEveryone.id, fromNode3.id]);
    expect(aliceOn3a.received[0]).toEqual(aliceOn1.received[0]);
  });

  it('lists and counts every node\'s connections, through any node', async () => {
    freshPrefix();
    const [node1, node2, node3] = await startCluster();
    const alice1 = fake('alice', 30);
    const bob = fake('bob', 10);
    const alice3 = fake('alice', 20);
    await node1.hub.register(alice1.connection);
    await node2.hub.register(bob.connection);
    await node3.hub.register(alice3.connection);

    for (const { hub } of [node1, node2, node3]) {
      expect((await hub.connections()).map((info) => [info.userId, info.node, info.openedAt, info.transport])).toEqual([
        ['bob', 'node-2', 10, 'ws'],
        ['alice', 'node-3', 20, 'ws'],
        ['alice', 'node-1', 30, 'ws'],
      ]);
      expect((await hub.connections('alice')).map((info) => info.id)).toEqual([alice3.connection.id, alice1.connection.id]);
      expect(await hub.counts()).toEqual({ total: 3, byUser: { alice: 2, bob: 1 } });
    }
  });

  it('an unregistered connection leaves every node\'s list at once', async () => {
    freshPrefix();
    const [node1, node2] = await startCluster();
    const alice = fake('alice');
    await node2.hub.register(alice.connection);
    expect((await node1.hub.counts()).total).toBe(1);
    await node2.hub.unregister(alice.connection);
    expect(await node1.hub.counts()).toEqual({ total: 0, byUser: {} });
  });

  it('disconnect through node 2 closes the user\'s connections on nodes 1 and 3, and only theirs', async () => {
    freshPrefix();
    const [node1, node2, node3] = await startCluster();
    const aliceOn1 = fake('alice');
    const aliceOn3 = fake('alice');
    const bobOn3 = fake('bob');
    await node1.hub.register(aliceOn1.connection);
    await node3.hub.register(aliceOn3.connection);
    await node3.hub.register(bobOn3.connection);

    expect(await node2.hub.disconnect('alice')).toBe(2);
    expect(aliceOn1.closes.map((reason) => reason.code)).toEqual(['disconnected']);
    expect(aliceOn3.closes.map((reason) => reason.code)).toEqual(['disconnected']);
    expect(bobOn3.closes).toEqual([]);
    expect(await node2.hub.counts()).toEqual({ total: 1, byUser: { bob: 1 } });
    expect((await node1.hub.push({ users: ['alice'] }, 'x', 1)).connections).toBe(0);
    expect(await node2.hub.disconnect('alice')).toBe(0);
  });

  it('replays through another node what was pushed through one, after the client\'s last id', async () => {
    freshPrefix();
    const [node1, node2, node3] = await startCluster();
    const first = await node1.hub.push({ users: ['alice'] }, 'a', 1);
    const second = await node2.hub.push({ all: true }, 'b', 2);
    const third = await node1.hub.push({ users: ['alice', 'bob'] }, 'c', 3);
    expect((await node3.hub.replay('alice', '0')).map((message) => message.id)).toEqual([first.id, second.id, third.id]);
    expect((await node3.hub.replay('alice', first.id)).map((message) => message.event)).toEqual(['b', 'c']);
    expect((await node2.hub.replay('bob', '0')).map((message) => message.event)).toEqual(['b', 'c']);
  });

  it('a node killed without cleanup drops out of lists and counts within its presence TTL, and slows no push', async () => {
    freshPrefix();
    const presenceTtlMs = 600;
    const [node1, node2, node3] = await startCluster({ presenceTtlMs, heartbeatIntervalMs: 150 });
    await node1.hub.register(fake('alice').connection);
    const carolOn3 = fake('carol');
    await node3.hub.register(carolOn3.connection);
    expect((await node1.hub.counts()).total).toBe(2);

    // "kill -9": the heartbeat stops and the sockets drop, with nothing deleted.
    await node3.hub.presence.stop({ deregister: false });
    await node3.redis.close();
    const killedAt = performance.now();
    expect(await node2.hub.counts()).toEqual({ total: 2, byUser: { alice: 1, carol: 1 } });

    // Its subscriber is gone, so a push waits for nobody's reply (not the 250 ms deadline).
    const pushStartedAt = performance.now();
    expect((await node1.hub.push({ users: ['carol', 'alice'] }, 'x', 1)).connections).toBe(1);
    expect(performance.now() - pushStartedAt).toBeLessThan(200);
    expect(carolOn3.received).toEqual([]);

    await eventually(async () => expect(await node2.hub.counts()).toEqual({ total: 1, byUser: { alice: 1 } }), presenceTtlMs + 500);
    expect(performance.now() - killedAt).toBeLessThan(presenceTtlMs + 300);
    expect((await node1.hub.connections()).map((info) => info.node)).toEqual(['node-1']);
    expect(await node1.hub.presence.liveNodes()).toEqual(['node-1', 'node-2']);
  });

  it('a node that closes leaves the lists at once', async () => {
    freshPrefix();
    const [node1, node2] = await startCluster();
    await node2.hub.register(fake('alice').connection);
    expect(await node2.hub.closeLocal()).toBe(1);
    await node2.hub.close();
    expect(await node1.hub.counts()).toEqual({ total: 0, byUser: {} });
    expect(await node1.hub.presence.liveNodes()).not.toContain('node-2');
  });
});

for (const each of backends) describe.skipIf(!each.available)(`redis hub: Redis unreachable (${each.name})`, () => {
  beforeAll(() => {
    backend = each;
  });
  it('rejects every shared call fast with store_unavailable, and still registers and closes locally', async () => {
    freshPrefix();
    const { hub } = await startNode('lonely', { url: `redis://127.0.0.1:${(await unusedPort()).toString()}` });
    const alice = fake('alice');
    await hub.register(alice.connection);
    const startedAt = performance.now();
    await expectUnavailable(hub.push({ users: ['alice'] }, 'x', 1));
    await expectUnavailable(hub.push({ all: true }, 'x', 1));
    await expectUnavailable(hub.replay('alice', '0'));
    await expectUnavailable(hub.connections());
    await expectUnavailable(hub.counts());
    await expectUnavailable(hub.disconnect('alice'));
    expect(performance.now() - startedAt).toBeLessThan(100);
    // Argument errors are still the caller's, whatever the store.
    await expect(hub.replay('alice', 'x')).rejects.toThrow(TypeError);
    await expect(hub.ready(50)).rejects.toThrow(/not listening/);
    expect(hub.presence.registered).toBe(false);
    expect(alice.closes).toEqual([]);
    expect(await hub.closeLocal()).toBe(1);
    expect(alice.closes.map((reason) => reason.code)).toEqual(['shutting_down']);
    await hub.unregister(alice.connection);
  });

  // A proxy in front of one server; a cluster's client follows the nodes' own addresses past it.
  it.skipIf(each.target.url === undefined)('a node cut off from Redis keeps its connections and rejoins by itself when Redis is back', async () => {
    freshPrefix();
    const proxy = await startRedisProxy(backend.target.url ?? '');
    opened.cleanup.push(() => proxy.close());
    const cutOff = await startNode('cut-off', { url: proxy.url });
    const steady = await startNode('steady');
    await cutOff.hub.ready();
    await steady.hub.ready();
    const alice = fake('alice');
    await cutOff.hub.register(alice.connection);

    proxy.cut();
    await eventually(async () => expect(cutOff.redis.healthy).toBe(false), 2000);
    await expectUnavailable(cutOff.hub.push({ users: ['alice'] }, 'x', 1));
    // Registered while Redis is away: kept here, written to Redis when it is back.
    const dave = fake('dave');
    await cutOff.hub.register(dave.connection);

    proxy.restore();
    await cutOff.hub.ready(5000);
    await eventually(async () => expect(await steady.hub.counts()).toEqual({ total: 2, byUser: { alice: 1, dave: 1 } }), 3000);
    expect((await steady.hub.push({ users: ['dave', 'alice'] }, 'welcome-back', 1)).connections).toBe(2);
    expect(dave.received.map((message) => message.event)).toEqual(['welcome-back']);
    expect(alice.received.map((message) => message.event)).toEqual(['welcome-back']);
  });
});
