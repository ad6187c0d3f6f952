// Background responses in cluster mode: two gateways sharing one Redis (the generation registry)
// and one PostgreSQL (the stored responses). A response started on node A is resumed on node B
// after a sequence number with exactly the remaining events and one upstream call, and one
// started on A is cancelled through B. Needs Redis and PostgreSQL; skips, saying why, without them.
import OpenAI from 'openai';
import type { ResponseStreamEvent } from 'openai/resources/responses/responses';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCluster, type ClusterServices } from '../src/cluster/cluster.js';
import { resolveConfig } from '../src/config/load.js';
import { createLogger } from '../src/observability/logger.js';
import { demoAnswer } from '../src/providers/mock/answer.js';
import { createStore } from '../src/store/create-store.js';
import type { Store } from '../src/store/store.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { deleteKeysUnder, openClient, redisBackends, uniqueKeyPrefix } from './support/redis.js';
import { waitFor } from './support/wait.js';

const postgresBase = process.env['SLUICE_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `sluice_responses_${Math.random().toString(36).slice(2, 10)}`;

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
if (!postgresUp) console.warn(`Skipping the Responses cluster tests: PostgreSQL does not answer at ${postgresBase}.`);

// Once on a single Redis, once on a Redis Cluster.
for (const backend of backends) describe.skipIf(!backend.available || !postgresUp)(`background responses across two nodes (${backend.name})`, () => {
  const keyPrefix = uniqueKeyPrefix();
  let store: Store;
  const clusters: ClusterServices[] = [];
  const nodes: TestGateway[] = [];
  let onA: OpenAI;
  let onB: OpenAI;
  /** Requests the demo provider of each node has served: counted through the usage rows. */
  const upstreamCalls = async (): Promise<number> => {
    await Promise.all(nodes.map((node) => node.app.generations.flushUsage()));
    return (await store.usage.recent({ limit: 100, userId: 'alice' })).filter((row) => row.route === 'responses').length;
  };

  beforeAll(async () => {
    store = await createStore(`${postgresBase}?schema=${schema}`);
    for (const nodeId of ['a', 'b']) {
      const config = {
        auth: { mode: 'keys' },
        cluster: { ...(backend.target.clusterNodes === undefined ? { redisUrl: backend.target.url } : { redisClusterNodes: [...backend.target.clusterNodes] }), nodeId, keyPrefix, presenceTtlMs: 2000 },
        generations: { resumeGraceMs: 5000, retentionMs: 60_000 },
        providers: { demo: { type: 'mock', chunkCount: 40, delayMs: 20 } },
        models: { demo: { provider: 'demo' } },
      };
      const resolved = resolveConfig({ ...config, server: { port: 0, host: '127.0.0.1' }, store: { url: 'sqlite::memory:' } }, {}, 'test config');
      const cluster = await openCluster(resolved.cluster!, resolved, createLogger('warn'));
      clusters.push(cluster);
      nodes.push(await startGateway(config, {}, { ...cluster.dependencies, store }));
    }
    const { key } = await nodes[0]!.app.keys.create({ userId: 'alice', role: 'user' });
    onA = new OpenAI({ baseURL: `${nodes[0]!.url}/v1`, apiKey: key, maxRetries: 0, timeout: 10_000 });
    onB = new OpenAI({ baseURL: `${nodes[1]!.url}/v1`, apiKey: key, maxRetries: 0, timeout: 10_000 });
  });
  afterAll(async () => {
    for (const node of nodes) await node.close();
    for (const cluster of clusters) await cluster.close();
    await store?.close();
    const admin = new pg.Client({ connectionString: postgresBase });
    await admin.connect();
    await admin.query(`drop schema if exists "${schema}" cascade`);
    await admin.end();
    const redis = openClient(backend);
    try {
      await deleteKeysUnder(redis, keyPrefix);
    } finally {
      redis.disconnect();
    }
  });

  it('started on A, resumed on B after starting_after: exactly the remaining events, one upstream call', async () => {
    const callsBefore = await upstreamCalls();
    const stream = await onA.responses.create({ model: 'demo', input: 'Hi', background: true, stream: true });
    const firstPart: ResponseStreamEvent[] = [];
    for await (const event of stream) {
      firstPart.push(event);
      if (firstPart.length === 10) break;
    }
    const id = (firstPart[0] as { response: { id: string } }).response.id;
    const lastSeen = firstPart.at(-1)!.sequence_number;
    const rest: ResponseStreamEvent[] = [];
    for await (const event of await onB.responses.retrieve(id, { stream: true, starting_after: lastSeen })) rest.push(event);
    const joined = [...firstPart, ...rest];
    expect(joined.map((event) => event.sequence_number)).toEqual(joined.map((_, index) => index));
    expect(joined.at(-1)?.type).toBe('response.completed');
    expect(joined.map((event) => (event.type === 'response.output_text.delta' ? event.delta : '')).join('')).toBe(demoAnswer('Hi'));
    await waitFor(() => nodes.every((node) => node.app.generations.active.size === 0), 'both nodes idle', 5000);
    expect((await onB.responses.retrieve(id)).status).toBe('completed');
    expect((await upstreamCalls()) - callsBefore).toBe(1);
  });

  it('started on A, cancelled through B', async () => {
    const queued = await onA.responses.create({ model: 'demo', input: 'Take your time', background: true });
    await waitFor(() => nodes[0]!.app.generations.active.size === 1, 'the response running on A');
    const cancelled = await onB.responses.cancel(queued.id);
    expect(cancelled.status).toBe('cancelled');
    await waitFor(() => nodes[0]!.app.generations.active.size === 0, 'the generation on A to stop', 2000);
    const stored = await onA.responses.retrieve(queued.id);
    expect(stored.status).toBe('cancelled');
  });
});
