// Cluster mode as operators run it: three `sluice serve` processes on different ports sharing one
// Redis and one PostgreSQL. A push through node 1 reaches a user on node 3; counts and lists span
// nodes; closing a user's connections works across nodes; a stream started on node 1 resumes on
// node 2 at random positions with exactly the full text; kill -9 of the producing node gives a
// re-attached client every delta that reached Redis, then generation_interrupted; a rate limit
// holds for all nodes together; and a Redis (or every master of a Redis Cluster) that stops and
// comes back is followed by /readyz while plain streams keep working.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyService } from '../src/auth/api-keys.js';
import { createStore } from '../src/store/create-store.js';
import type { RedisTarget } from '../src/redis/connection.js';
import { demoAnswer } from '../src/providers/mock/answer.js';
import { assertBuildIsCurrent } from './support/dist-freshness.js';
import { redisBackends, openClient, uniqueKeyPrefix, deleteKeysUnder, startRedisProxy, type RedisBackend } from './support/redis.js';
import { redisServerMissing, startProxiedRedisCluster } from './support/proxied-redis-cluster.js';
import { unusedPort } from './support/tcp.js';
import { eventually, waitFor, within } from './support/wait.js';
import { attachNative, generationIdOf, postNativeChat, readNative } from './support/native-client.js';

const root = new URL('..', import.meta.url).pathname;
const cli = join(root, 'dist/cli/main.js');
const directory = mkdtempSync(join(tmpdir(), 'sluice-cluster-'));
const postgresBase = process.env['SLUICE_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `sluice_cluster_${Math.random().toString(36).slice(2, 10)}`;
const storeUrl = `${postgresBase}?schema=${schema}`;
const children = new Set<ChildProcess>();

async function postgresAnswers(): Promise<boolean> {
  const client = new pg.Client({ connectionString: postgresBase, connectionTimeoutMillis: 1000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

const backends = await redisBackends();
const postgresUp = await postgresAnswers();
if (!postgresUp && process.env['CI']) throw new Error(`PostgreSQL does not answer at ${postgresBase}; .ci/run starts it`);
if (!postgresUp) console.warn(`Skipping the cluster tests: PostgreSQL does not answer at ${postgresBase}.`);

interface Node {
  url: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  logs: () => string;
}

/**
 * Starts one node from the build; resolves when it answers /healthz. `redis` (a URL, or a
 * cluster's seed URLs) replaces the backend's own address.
 */
async function startNode(name: string, options: { backend: RedisBackend; redis?: string | string[]; keyPrefix: string; port?: number }): Promise<Node> {
  const target: RedisTarget = options.redis === undefined ? options.backend.target : typeof options.redis === 'string' ? { url: options.redis } : { clusterNodes: options.redis };
  const redis = target.clusterNodes === undefined ? `redisUrl: "${target.url ?? ''}"` : `redisClusterNodes: [${target.clusterNodes.map((node) => `"${node}"`).join(', ')}]`;
  const port = options.port ?? (await unusedPort());
  const config = join(directory, `${name}.yaml`);
  writeFileSync(
    config,
    [
      `server: { host: 127.0.0.1, port: ${port.toString()}, heartbeatMs: 1000, drainTimeoutMs: 200 }`,
      'log: { level: warn }',
      'auth: { mode: keys }',
      `store: { url: "${storeUrl}" }`,
      `cluster: { ${redis}, nodeId: ${name}, keyPrefix: "${options.keyPrefix}", presenceTtlMs: 2000 }`,
      'generations: { resumeGraceMs: 5000, retentionMs: 60000 }',
      'providers:',
      '  demo: { type: mock, chunkCount: 60, delayMs: 25 }',
      'models:',
      '  demo: { provider: demo }',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [cli, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let logs = '';
  child.stdout?.on('data', (chunk: Buffer) => (logs += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (logs += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port.toString()}`;
  const deadline = performance.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`node ${name} exited: ${logs}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return { url, child, exited, logs: () => logs };
    } catch {
      // Not listening yet.
    }
    if (performance.now() > deadline) throw new Error(`node ${name} did not start: ${logs}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stopNode(node: Node): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return;
  node.child.kill('SIGTERM');
  await within(node.exited, 10_000, 'a node to stop');
}

let nodes: Node[] = [];
const auth = (key: string) => ({ authorization: `Bearer ${key}` });
let keys: { admin: string; alice: string; bob: string; limited: string };

afterAll(() => rmSync(directory, { recursive: true, force: true }));

// Once on a single Redis, once on a Redis Cluster (docs/deployment.md, "Redis Cluster").
for (const backend of backends) describe.skipIf(!backend.available || !postgresUp)(`three nodes on one ${backend.name} and one PostgreSQL`, () => {
  /** Key prefixes on the shared Redis, deleted after the run. */
  const prefixes: string[] = [];
  const keyPrefix = uniqueKeyPrefix();
  prefixes.push(keyPrefix);

  beforeAll(async () => {
    assertBuildIsCurrent();
    // The keys live in PostgreSQL: made once, valid on every node.
    const store = await createStore(storeUrl);
    const service = createKeyService({ keys: store.keys, now: Date.now });
    keys = {
      admin: (await service.create({ userId: 'ops', role: 'admin' })).key,
      alice: (await service.create({ userId: 'alice', role: 'user' })).key,
      bob: (await service.create({ userId: 'bob', role: 'user' })).key,
      limited: (await service.create({ userId: 'carol', role: 'user', limits: { requestsPerMinute: 5 } })).key,
    };
    await store.close();
    nodes = await Promise.all(['node-1', 'node-2', 'node-3'].map((name) => startNode(name, { backend, keyPrefix })));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(nodes.map(stopNode));
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    const client = new pg.Client({ connectionString: postgresBase });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
    // Leave nothing in the shared Redis.
    const redis = openClient(backend);
    for (const prefix of prefixes) await deleteKeysUnder(redis, prefix);
    redis.disconnect();
  });

  const node = (index: number): Node => nodes[index]!;

  /** Opens the hub channel of `key`'s user on a node; `events` collects push names. */
  async function openChannel(on: Node, key: string): Promise<{ events: string[]; close(): void }> {
    const controller = new AbortController();
    const response = await fetch(`${on.url}/api/events`, { headers: auth(key), signal: controller.signal });
    expect(response.status).toBe(200);
    const events: string[] = [];
    void (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
          for (const line of decoder.decode(chunk, { stream: true }).split('\n')) if (line.startsWith('event: ')) events.push(line.slice(7));
        }
      } catch {
        // Closed by the test.
      }
    })();
    return { events, close: () => controller.abort() };
  }

  async function connectionsOf(on: Node): Promise<{ data: { userId: string; node: string }[]; counts: { total: number; byUser: Record<string, number> } }> {
    return (await (await fetch(`${on.url}/api/connections`, { headers: auth(keys.admin) })).json()) as never;
  }

  it('a push through node 1 reaches a user on node 3; counts and lists span nodes; closing works across nodes', async () => {
    const onThree = await openChannel(node(2), keys.alice);
    const onTwo = await openChannel(node(1), keys.alice);
    const bobOnOne = await openChannel(node(0), keys.bob);
    let listed = await connectionsOf(node(1));
    for (let attempt = 0; attempt < 50 && listed.counts.total < 3; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      listed = await connectionsOf(node(1));
    }
    expect(listed.counts).toEqual({ total: 3, byUser: { alice: 2, bob: 1 } });
    expect(listed.data.map((connection) => connection.node).sort()).toEqual(['node-1', 'node-2', 'node-3']);

    const push = await fetch(`${node(0).url}/api/push`, { method: 'POST', headers: { ...auth(keys.admin), 'content-type': 'application/json' }, body: JSON.stringify({ to: { users: ['alice'] }, event: 'hello', data: { from: 'node-1' } }) });
    expect(await push.json()).toMatchObject({ connections: 2 });
    await waitFor(() => onThree.events.includes('hello') && onTwo.events.includes('hello'), 'the push on nodes 2 and 3');
    expect(bobOnOne.events).not.toContain('hello');

    const closed = await fetch(`${node(0).url}/api/connections/alice`, { method: 'DELETE', headers: auth(keys.admin) });
    expect(await closed.json()).toEqual({ userId: 'alice', closed: 2 });
    await waitFor(() => onThree.events.includes('close') && onTwo.events.includes('close'), 'alice\'s channels on nodes 2 and 3 to close');
    expect((await connectionsOf(node(2))).counts).toEqual({ total: 1, byUser: { bob: 1 } });
    bobOnOne.close();
    onTwo.close();
    onThree.close();
  });

  it('a stream started on node 1 resumes on node 2 or 3 at random positions with exactly the full text', async () => {
    for (let round = 0; round < 4; round++) {
      const question = `resume round ${round.toString()}`;
      const first = await postNativeChat(node(0).url, { message: question, model: 'demo' }, { key: keys.alice, stopAfterDeltas: 1 + Math.floor(Math.random() * 40) });
      const generationId = generationIdOf(first);
      const other = node(1 + (round % 2));
      const rest = await attachNative(other.url, generationId, { key: keys.alice, lastEventId: first.lastEventId ?? '' });
      expect(rest.status).toBe(200);
      expect(first.text + rest.text).toBe(demoAnswer(question));
      expect(rest.events.at(-1)?.event).toBe('done');
      // Bob may not read it on any node.
      expect((await fetch(`${other.url}/api/generations/${generationId}/events`, { headers: auth(keys.bob) })).status).toBe(403);
    }
  });

  it('replays missed pushes on a different node, and cancels from any node', async () => {
    const first = await openChannel(node(0), keys.bob);
    const seen = await fetch(`${node(1).url}/api/push`, { method: 'POST', headers: { ...auth(keys.admin), 'content-type': 'application/json' }, body: JSON.stringify({ to: { users: ['bob'] }, event: 'seen', data: 1 }) });
    const { id } = (await seen.json()) as { id: string };
    await waitFor(() => first.events.includes('seen'), 'the first push');
    first.close();
    await fetch(`${node(1).url}/api/push`, { method: 'POST', headers: { ...auth(keys.admin), 'content-type': 'application/json' }, body: JSON.stringify({ to: { users: ['bob'] }, event: 'missed', data: 2 }) });
    const controller = new AbortController();
    const again = await fetch(`${node(2).url}/api/events`, { headers: { ...auth(keys.bob), 'last-event-id': id }, signal: controller.signal });
    const reader = (again.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while (!text.includes('event: missed')) text += new TextDecoder().decode((await within(reader.read(), 5000, 'the replay on node 3')).value);
    expect(text).not.toContain('event: seen');
    controller.abort();

    // A generation running on node 1, cancelled through node 3.
    const controllerChat = new AbortController();
    const response = await fetch(`${node(0).url}/api/chat`, { method: 'POST', headers: { ...auth(keys.alice), 'content-type': 'application/json', accept: 'text/event-stream' }, body: JSON.stringify({ message: 'cancel me elsewhere', model: 'demo' }), signal: controllerChat.signal });
    const generationId = response.headers.get('x-sluice-generation-id') ?? '';
    const reading = readNative(response, controllerChat);
    // Node 3 knows the generation once its copy in Redis has begun; until then it answers 404.
    const cancelled = await eventually(async () => {
      const answer = await fetch(`${node(2).url}/api/generations/${generationId}/cancel`, { method: 'POST', headers: auth(keys.alice) });
      if (answer.status !== 404) return answer;
      await answer.body?.cancel();
      return undefined;
    }, 'node 3 to find the generation');
    expect(await cancelled.json()).toMatchObject({ generationId, cancelled: true });
    const read = await within(reading, 5000, 'the cancelled stream on node 1 to end');
    expect(read.events.at(-1)).toMatchObject({ event: 'error', data: { code: 'cancelled' } });
  });

  it('a rate limit holds for all nodes together', async () => {
    const statuses: number[] = [];
    for (let index = 0; index < 12; index++) {
      const response = await fetch(`${node(index % 3).url}/v1/chat/completions`, {
        method: 'POST',
        headers: { ...auth(keys.limited), 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'hi' }] }),
      });
      await response.text();
      statuses.push(response.status);
    }
    expect(statuses.filter((status) => status === 200)).toHaveLength(5);
    expect(statuses.filter((status) => status === 429)).toHaveLength(7);
  });

  it('kill -9 of the producing node: a client re-attached on another node gets every delta that reached Redis, then generation_interrupted', async () => {
    const producer = await startNode('node-doomed', { backend, keyPrefix });
    const first = await postNativeChat(producer.url, { message: 'doomed answer', model: 'demo' }, { key: keys.alice, stopAfterDeltas: 10 });
    const generationId = generationIdOf(first);
    // Let a few more deltas reach Redis, then kill the node without any cleanup.
    await new Promise((resolve) => setTimeout(resolve, 200));
    producer.child.kill('SIGKILL');
    await producer.exited;
    const rest = await within(attachNative(node(1).url, generationId, { key: keys.alice, lastEventId: first.lastEventId ?? '' }), 15_000, 'the re-attached stream to end');
    expect(rest.status).toBe(200);
    expect(rest.events.at(-1)).toMatchObject({ event: 'error', data: { code: 'generation_interrupted' } });
    const text = first.text + rest.text;
    expect(text.length).toBeGreaterThan(first.text.length);
    expect(demoAnswer('doomed answer').startsWith(text)).toBe(true);
    expect(text).not.toBe(demoAnswer('doomed answer'));
  });

  // Redis reached through proxies the test cuts and restores: the single Redis through one, and for
  // a Redis Cluster three masters of this test's own, each through one and announcing the proxy as
  // its address (proxied-redis-cluster.ts). Not a redis-server stopped and started again: while it
  // was down, the suite's other connections could take its port, and it could not listen again.
  it('when Redis stops and comes back: /readyz follows, plain streams keep working, and the node recovers by itself', async (context) => {
    const missing = backend.name === 'redis-cluster' ? redisServerMissing() : undefined;
    if (missing !== undefined && process.env['SLUICE_REQUIRE_REDIS_CLUSTER'] === '1') throw new Error(`The Redis Cluster tests must run (SLUICE_REQUIRE_REDIS_CLUSTER=1), but ${missing}`);
    if (missing !== undefined) context.skip(missing);
    const redis = backend.name === 'redis' ? await startRedisProxy(backend.target.url ?? '') : await startProxiedRedisCluster();
    const soloPrefix = uniqueKeyPrefix();
    prefixes.push(soloPrefix);
    const only = await startNode('node-solo', { backend, redis: 'url' in redis ? redis.url : redis.clusterNodes, keyPrefix: soloPrefix });
    try {
      const readyStatus = async () => (await fetch(`${only.url}/readyz`)).status;
      for (let attempt = 0; attempt < 100 && (await readyStatus()) !== 200; attempt++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await readyStatus()).toBe(200);

      redis.cut();
      for (let attempt = 0; attempt < 100 && (await readyStatus()) !== 503; attempt++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await readyStatus()).toBe(503);
      // A plain OpenAI-compatible stream needs no shared state: it still works, and does not hang.
      const startedAt = performance.now();
      const response = await fetch(`${only.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { ...auth(keys.alice), 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'demo', stream: true, messages: [{ role: 'user', content: 'still there?' }] }),
      });
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('[DONE]');
      expect(performance.now() - startedAt).toBeLessThan(5000);
      // What needs Redis says so at once.
      const push = await fetch(`${only.url}/api/push`, { method: 'POST', headers: { ...auth(keys.admin), 'content-type': 'application/json' }, body: JSON.stringify({ to: { all: true }, event: 'x', data: 1 }) });
      expect(push.status).toBe(503);

      redis.restore();
      for (let attempt = 0; attempt < 200 && (await readyStatus()) !== 200; attempt++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await readyStatus()).toBe(200);
      // The hub works again as a whole: a channel opened now is listed and gets a push sent
      // through the node (on a cluster, through the sharded subscriber's new connections).
      const channel = await openChannel(only, keys.alice);
      try {
        await eventually(async () => ((await connectionsOf(only)).counts.total === 1 ? true : undefined), 'alice\'s channel to be listed', 5000);
        const again = await fetch(`${only.url}/api/push`, { method: 'POST', headers: { ...auth(keys.admin), 'content-type': 'application/json' }, body: JSON.stringify({ to: { users: ['alice'] }, event: 'back', data: 1 }) });
        expect(again.status).toBe(200);
        expect(await again.json()).toMatchObject({ connections: 1 });
        await waitFor(() => channel.events.includes('back'), 'the push after Redis came back');
      } finally {
        channel.close();
      }
      // Logged once per change of state, not once per failed call.
      expect(only.logs().match(/redis: unreachable/g)?.length ?? 0).toBeLessThanOrEqual(2);
    } finally {
      await stopNode(only);
      await redis.close();
    }
  });
});
