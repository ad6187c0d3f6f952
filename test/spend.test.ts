// Spend as an operator and a caller meet it, through the official `openai` package: every usage row
// carries its cost (cached prompt tokens at their own price), /admin/usage reports it by user, key,
// model, deployment and day and as CSV, and daily budgets on a key and on a user refuse with 429
// budget_exceeded and Retry-After at the next UTC midnight, after a restart and across two nodes
// sharing Redis. Run on a SQLite file and on PostgreSQL (a fresh schema per test).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createStore } from '../src/store/create-store.js';
import type { Store } from '../src/store/store.js';
import { createRedisConnections, type RedisConnections } from '../src/redis/connection.js';
import { createRedisLimitState } from '../src/limits/redis-limit-state.js';
import { createLogger } from '../src/observability/logger.js';
import { startMockOpenAi, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { waitFor } from './support/wait.js';
import { deleteKeysUnder, redisAvailable, redisUrl, uniqueKeyPrefix } from './support/redis.js';

const directory = mkdtempSync(join(tmpdir(), 'sluice-spend-'));
const postgresUrl = process.env['SLUICE_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const postgresUp = await probe(postgresUrl);
if (!postgresUp && process.env['CI'] !== undefined) throw new Error(`PostgreSQL does not answer at ${postgresUrl}`);
if (!postgresUp) console.warn(`Skipping the PostgreSQL half of the spend tests: nothing answers at ${postgresUrl}.`);
const redisUp = await redisAvailable();

async function probe(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

interface Backend {
  readonly name: string;
  /** A store URL nobody else uses, and how to drop it. */
  fresh(): { url: string; dispose: () => Promise<void> };
}

const backends: Backend[] = [
  { name: 'sqlite', fresh: () => ({ url: `sqlite:${join(directory, `${randomBytes(6).toString('hex')}.db`)}`, dispose: async () => {} }) },
  ...(postgresUp
    ? [
        {
          name: 'postgres',
          fresh: () => {
            const schema = `sluice_spend_${randomBytes(6).toString('hex')}`;
            const url = new URL(postgresUrl);
            url.searchParams.set('schema', schema);
            return {
              url: url.toString(),
              dispose: async () => {
                const client = new pg.Client({ connectionString: postgresUrl });
                await client.connect();
                try {
                  await client.query(`drop schema if exists "${schema}" cascade`);
                } finally {
                  await client.end();
                }
              },
            };
          },
        },
      ]
    : []),
];

// Per million tokens: 1000 input, 500 cached input, 2000 output, so one prompt token costs 1000
// micro-units. The mock's answer: 100 prompt tokens (20 from the cache) and 50 completion tokens,
// 80 × 1000 + 20 × 500 + 50 × 2000 = 190 000 micro-USD = 0.19 USD a request.
const requestMicros = 190_000;
const usagePlan = { prompt_tokens: 100, completion_tokens: 50, total_tokens: 150, prompt_tokens_details: { cached_tokens: 20 } };

function spendConfig(upstream: MockOpenAi, storeUrl: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    auth: { mode: 'keys' },
    store: { url: storeUrl },
    providers: { upstream: { type: 'openai', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey } },
    models: {
      'gpt-test': { provider: 'upstream', model: 'gpt-4o-mini', price: { input: 1000, output: 2000, cachedInput: 500 } },
      free: { provider: 'upstream', model: 'llama' },
    },
    prices: { 'upstream/gpt-4o': { input: 5, output: 15, currency: 'EUR' } },
    ...extra,
  };
}

let upstream: MockOpenAi;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  upstream = await startMockOpenAi();
});
afterAll(async () => {
  await upstream?.close();
  rmSync(directory, { recursive: true, force: true });
});
beforeEach(() => {
  upstream.reset();
  upstream.plan = { usage: usagePlan, text: 'ok' };
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function client(gateway: TestGateway, key: string): OpenAI {
  return new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 });
}

/** One streamed answer, read to the end, and its usage row stored. */
async function spendOnce(gateway: TestGateway, key: string, model = 'gpt-test'): Promise<void> {
  const stream = await client(gateway, key).chat.completions.create({ model, stream: true, messages: [{ role: 'user', content: 'hi' }] });
  for await (const chunk of stream) void chunk;
  await waitFor(() => gateway.app.generations.active.size === 0, 'the answer to be settled');
  await gateway.app.generations.flushUsage();
}

/** The refusal the `openai` package raises, with its status, code, message and Retry-After. */
async function refusalOf(gateway: TestGateway, key: string): Promise<{ status: number | undefined; code: unknown; message: string; retryAfter: string | null | undefined }> {
  try {
    await client(gateway, key).chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });
  } catch (error) {
    if (!(error instanceof OpenAI.APIError)) throw error;
    const refused = error as InstanceType<typeof OpenAI.APIError>;
    const headers: Headers | undefined = refused.headers;
    return { status: refused.status, code: refused.code, message: refused.message, retryAfter: headers?.get('retry-after') };
  }
  throw new Error('the request was not refused');
}

function secondsToUtcMidnight(): number {
  const now = Date.now();
  return Math.ceil((Math.floor(now / 86_400_000 + 1) * 86_400_000 - now) / 1000);
}

describe.each(backends)('spend on $name', (backend) => {
  let store: Store;
  let storeUrl: string;

  beforeEach(async () => {
    const fresh = backend.fresh();
    storeUrl = fresh.url;
    store = await createStore(storeUrl);
    cleanups.push(async () => {
      await store.close();
      await fresh.dispose();
    });
  });

  async function gateway(extra: Record<string, unknown> = {}, dependencies: Parameters<typeof startGateway>[2] = {}): Promise<TestGateway> {
    const started = await startGateway(spendConfig(upstream, storeUrl, extra), {}, { store, ...dependencies });
    cleanups.push(() => started.close());
    return started;
  }

  async function admin(started: TestGateway): Promise<(path: string, init?: RequestInit) => Promise<Response>> {
    const { key } = await started.app.keys.create({ userId: 'ops', role: 'admin' });
    return (path, init = {}) => fetch(`${started.url}${path}`, { ...init, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...init.headers } });
  }

  it('puts the cost on every usage row and reports it by user, key, model, deployment and day, as JSON and CSV', async () => {
    const started = await gateway();
    const call = await admin(started);
    const alice = await started.app.keys.create({ userId: 'alice', role: 'user' });
    const bob = await started.app.keys.create({ userId: 'bob', role: 'user' });
    await spendOnce(started, alice.key);
    await spendOnce(started, alice.key);
    await spendOnce(started, bob.key);
    await spendOnce(started, bob.key, 'free');
    // A direct provider/model name priced by the top-level prices map, in euros.
    await spendOnce(started, bob.key, 'upstream/gpt-4o');

    const rows = await store.usage.recent({ limit: 10 });
    expect(rows.map((row) => [row.userId, row.model, row.deployment, row.costMicros, row.currency, row.estimated])).toStrictEqual([
      // 80 × 5 + 20 × 5 + 50 × 15 = 1250 micro-euros: no cachedInput price, so cached at the input price.
      ['bob', 'upstream/gpt-4o', 'upstream/gpt-4o', 1_250, 'EUR', false],
      ['bob', 'free', 'upstream/llama', undefined, undefined, false],
      ['bob', 'gpt-test', 'upstream/gpt-4o-mini', requestMicros, 'USD', false],
      ['alice', 'gpt-test', 'upstream/gpt-4o-mini', requestMicros, 'USD', false],
      ['alice', 'gpt-test', 'upstream/gpt-4o-mini', requestMicros, 'USD', false],
    ]);

    const today = new Date().toISOString().slice(0, 10);
    const report = await call(`/admin/usage?groupBy=user,deployment,day&from=${today}&to=${today}`);
    expect(report.status).toBe(200);
    const body = (await report.json()) as { groupBy: string[]; data: { userId: string; deployment?: string; day: string; currency?: string; costMicros: number; cost: string; requests: number; totalTokens: number }[] };
    expect(body.groupBy).toStrictEqual(['user', 'deployment', 'day']);
    expect(body.data.map((row) => [row.userId, row.deployment, row.day, row.currency, row.cost, row.costMicros, row.requests, row.totalTokens])).toStrictEqual([
      ['alice', 'upstream/gpt-4o-mini', today, 'USD', '0.380000', 2 * requestMicros, 2, 300],
      ['bob', 'upstream/gpt-4o', today, 'EUR', '0.001250', 1_250, 1, 150],
      ['bob', 'upstream/gpt-4o-mini', today, 'USD', '0.190000', requestMicros, 1, 150],
      ['bob', 'upstream/llama', today, undefined, '0.000000', 0, 1, 150],
    ]);

    const byKey = (await (await call(`/admin/usage?groupBy=key&keyId=${alice.record.id}`)).json()) as { data: { keyId: string; cost: string }[] };
    expect(byKey.data).toMatchObject([{ keyId: alice.record.id, cost: '0.380000' }]);

    const csv = await call('/admin/usage?groupBy=user,model&format=csv');
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(csv.headers.get('content-disposition')).toMatch(/^attachment; filename="sluice-usage-/);
    const lines = (await csv.text()).split('\r\n');
    expect(lines[0]).toBe('user_id,model,currency,cost,requests,prompt_tokens,completion_tokens,total_tokens,estimated_requests,completed,cancelled,errors,refused,cost_micros');
    expect(lines).toContain('alice,gpt-test,USD,0.380000,2,200,100,300,0,2,0,0,0,380000');

    const invalid = await call('/admin/usage?groupBy=user,colour');
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { error: { param: string } }).error.param).toBe('groupBy');
  });

  it('a key budget from POST /admin/keys refuses with 429 budget_exceeded and Retry-After at UTC midnight, and keeps refusing after a restart', async () => {
    let started = await gateway();
    const call = await admin(started);
    const created = await call('/admin/keys', { method: 'POST', body: JSON.stringify({ userId: 'carol', role: 'user', dailyBudget: 0.3, monthlyBudget: 100 }) });
    expect(created.status).toBe(201);
    const { key, dailyBudget, monthlyBudget } = (await created.json()) as { key: string; dailyBudget: number; monthlyBudget: number };
    expect([dailyBudget, monthlyBudget]).toStrictEqual([0.3, 100]);
    const badBudget = await call('/admin/keys', { method: 'POST', body: JSON.stringify({ userId: 'carol', role: 'user', dailyBudget: 0.0000001 }) });
    expect(badBudget.status).toBe(400);
    expect(((await badBudget.json()) as { error: { param: string } }).error.param).toBe('dailyBudget');

    // 0.19 then 0.38: the second is admitted (0.19 < 0.30), and leaves the budget overdrawn.
    await spendOnce(started, key);
    await spendOnce(started, key);
    const refused = await refusalOf(started, key);
    expect(refused).toMatchObject({ status: 429, code: 'budget_exceeded' });
    expect(refused.message).toContain('key.dailyBudget is 0.300000 USD per UTC day');
    expect(Math.abs(Number(refused.retryAfter) - secondsToUtcMidnight())).toBeLessThanOrEqual(2);
    // The refusal is a usage row too, costing nothing.
    await started.app.generations.flushUsage();
    expect((await store.usage.recent({ limit: 1 }))[0]).toMatchObject({ outcome: 'refused', errorCode: 'budget_exceeded' });
    // An unpriced model spends nothing, so the budget does not stop it.
    await spendOnce(started, key, 'free');

    // A new process on the same store seeds the day's spend from the usage rows.
    await started.close();
    cleanups.splice(cleanups.length - 1, 1);
    started = await gateway();
    expect(await refusalOf(started, key)).toMatchObject({ status: 429, code: 'budget_exceeded' });
  });

  it('a user budget in limits.users refuses every key of that user', async () => {
    const started = await gateway({ limits: { perUser: { monthlyBudget: 1000 }, users: { dave: { dailyBudget: 0.2 } } } });
    const first = await started.app.keys.create({ userId: 'dave', role: 'user' });
    const second = await started.app.keys.create({ userId: 'dave', role: 'user' });
    const other = await started.app.keys.create({ userId: 'erin', role: 'user' });
    await spendOnce(started, first.key);
    await spendOnce(started, second.key);
    const refused = await refusalOf(started, first.key);
    expect(refused).toMatchObject({ status: 429, code: 'budget_exceeded' });
    expect(refused.message).toContain('user.dailyBudget is 0.200000 USD');
    expect(await refusalOf(started, second.key)).toMatchObject({ code: 'budget_exceeded' });
    // Someone else's spend is theirs.
    await spendOnce(started, other.key);
  });

  it.skipIf(!redisUp)('two nodes sharing Redis share one budget', async () => {
    const keyPrefix = uniqueKeyPrefix();
    const connections: RedisConnections[] = [];
    const node = async (nodeStore: Store): Promise<TestGateway> => {
      const redis = createRedisConnections({ url: redisUrl, keyPrefix, logger: createLogger('silent') });
      connections.push(redis);
      await redis.ready(5_000);
      return gateway({}, { limitState: createRedisLimitState(redis), store: nodeStore });
    };
    cleanups.push(async () => {
      if (connections[0] !== undefined) await deleteKeysUnder(connections[0].command, keyPrefix);
      for (const redis of connections) await redis.close();
    });
    const one = await node(store);
    // The second node opens the database on its own, as another process would.
    const secondStore = await createStore(storeUrl);
    cleanups.push(() => secondStore.close());
    const two = await node(secondStore);
    const { key } = await one.app.keys.create({ userId: 'frank', role: 'user', limits: { dailyBudgetMicros: 300_000 } });
    await spendOnce(one, key);
    await spendOnce(two, key);
    // The second node's counter holds the first node's spend: both refuse now.
    expect(await refusalOf(one, key)).toMatchObject({ status: 429, code: 'budget_exceeded' });
    expect(await refusalOf(two, key)).toMatchObject({ status: 429, code: 'budget_exceeded' });
  });
});
