// Upstream pools end to end, against one mock upstream whose deployments and keys fail on command:
// weighted shares, least-busy, ordered with priorities, cooldown and half-open recovery,
// Retry-After, a refused key taken out alone, no retry after the first token, provider budgets,
// 503 pool_unavailable with Retry-After, what the usage row, the log line and the admin view say,
// the allowlist through the official `openai` package, and three nodes sharing one cooldown
// through Redis. Each test starts its own gateway, so no health carries from one to the next.
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startMockPoolUpstream, type MockPoolUpstream } from './support/mock-pool-upstream.js';
import { postChat, readCompletionText, readErrorAnswer, readStream } from './support/chat-client.js';
import { redisAvailable, redisUrl, uniqueKeyPrefix } from './support/redis.js';
import { resolveConfig } from '../src/config/load.js';
import { openCluster, type ClusterServices } from '../src/cluster/cluster.js';
import { createLogger } from '../src/observability/logger.js';

const keys = ['sk-pool-one-0123456789', 'sk-pool-two-0123456789'];
let upstream: MockPoolUpstream;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  upstream = await startMockPoolUpstream(keys);
});
afterEach(async () => {
  await Promise.all(gateways.splice(0).map((gateway) => gateway.close()));
  upstream.reset();
});
afterAll(async () => {
  await upstream?.close();
});

/** Provider entries `p-<name>` for each deployment name, each at its own base URL, with both keys unless told. */
function providers(names: readonly string[], extra: Record<string, Record<string, unknown>> = {}): Record<string, unknown> {
  return Object.fromEntries(names.map((name) => [`p-${name}`, { type: 'openai', baseUrl: upstream.baseUrlOf(name), apiKeys: [keys[0]], ...extra[name] }]));
}

/** Each gateway's admin key: callers here are admins, so the same key reads /admin/deployments. */
const adminKeys = new Map<TestGateway, string>();

async function withAdmin(gateway: TestGateway): Promise<TestGateway> {
  adminKeys.set(gateway, (await gateway.app.keys.create({ userId: 'root', role: 'admin' })).key);
  return gateway;
}

const asAdmin = (gateway: TestGateway) => ({ authorization: `Bearer ${adminKeys.get(gateway) ?? ''}` });

async function gatewayWith(config: Record<string, unknown>): Promise<TestGateway> {
  const gateway = await startGateway({ auth: { mode: 'keys' }, router: { cooldown: { initialMs: 300, maxMs: 2000 }, retry: { maxAttempts: 3, maxTotalMs: 10_000 } }, ...config });
  gateways.push(gateway);
  return withAdmin(gateway);
}

async function served(gateway: TestGateway, model: string, stream = false): Promise<string> {
  const response = await postChat(gateway.url, { model, stream, headers: asAdmin(gateway) });
  expect(response.status).toBe(200);
  if (stream) return (await readStream(response)).content;
  return readCompletionText(response);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface DeploymentView {
  id: string;
  state: string;
  cooldownUntil?: string;
  inFlight: number;
  requests: number;
  errors: Record<string, number>;
  latencyMs: { p50: number | null; p95: number | null };
  timeToFirstTokenMs: { p50: number | null; p95: number | null };
  keys: { id: string; state: string; requests: number; errors: Record<string, number> }[];
}

async function deployments(gateway: TestGateway): Promise<Map<string, DeploymentView>> {
  const response = await fetch(`${gateway.url}/admin/deployments`, { headers: asAdmin(gateway) });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { data: DeploymentView[] };
  return new Map(body.data.map((view) => [view.id, view]));
}

describe('balancing', () => {
  it('weighted: shares within a few percent of the weights over 1000 requests', async () => {
    const gateway = await gatewayWith({
      providers: providers(['a', 'b']),
      models: { chat: { strategy: 'weighted', deployments: [{ provider: 'p-a', model: 'm', weight: 3 }, { provider: 'p-b', model: 'm', weight: 1 }] } },
    });
    const total = 1000;
    for (let sent = 0; sent < total; sent += 25) await Promise.all(Array.from({ length: 25 }, () => served(gateway, 'chat')));
    const share = (upstream.served.get('a') ?? 0) / total;
    expect((upstream.served.get('a') ?? 0) + (upstream.served.get('b') ?? 0)).toBe(total);
    // 3 standard deviations of a binomial(1000, 0.75) share are 4.1 %.
    expect(Math.abs(share - 0.75)).toBeLessThan(0.045);
  }, 60_000);

  it('least-busy: each new request goes to the deployment with the fewest in flight', async () => {
    upstream.setBehaviour('a', { chunkDelayMs: 150 });
    upstream.setBehaviour('b', { chunkDelayMs: 150 });
    const gateway = await gatewayWith({
      providers: providers(['a', 'b']),
      models: { chat: { strategy: 'least-busy', deployments: [{ provider: 'p-a', model: 'm' }, { provider: 'p-b', model: 'm' }] } },
    });
    const running: Promise<string>[] = [];
    for (let index = 1; index <= 4; index += 1) {
      running.push(served(gateway, 'chat', true));
      // Wait until the upstream holds it, so the next choice sees it in flight.
      for (let waited = 0; [...upstream.inProgress.values()].reduce((sum, count) => sum + count, 0) < index && waited < 2000; waited += 5) await sleep(5);
      if (index % 2 === 0) expect(upstream.inProgress.get('a')).toBe(upstream.inProgress.get('b'));
    }
    await Promise.all(running);
    expect(upstream.served.get('a')).toBe(2);
    expect(upstream.served.get('b')).toBe(2);
  });

  it('ordered with priorities: the first available, and priority 1 only while every priority-0 one is out', async () => {
    const gateway = await gatewayWith({
      providers: providers(['a', 'b', 'c']),
      router: { cooldown: { initialMs: 5000, maxMs: 5000 } },
      models: {
        chat: { strategy: 'ordered', deployments: [{ provider: 'p-c', model: 'm', priority: 1 }, { provider: 'p-a', model: 'm' }, { provider: 'p-b', model: 'm' }] },
      },
    });
    expect(await served(gateway, 'chat')).toBe('served by a');
    expect(await served(gateway, 'chat')).toBe('served by a');
    upstream.setBehaviour('a', { failStatus: 500 });
    expect(await served(gateway, 'chat')).toBe('served by b');
    upstream.setBehaviour('b', { failStatus: 500 });
    expect(await served(gateway, 'chat')).toBe('served by c');
    expect(upstream.served.get('c')).toBe(1);
  });
});

describe('health', () => {
  it('a failed deployment cools down, is probed half-open when the cooldown ends, and is healthy again', async () => {
    const gateway = await gatewayWith({
      providers: providers(['a', 'b']),
      models: { chat: { strategy: 'ordered', deployments: [{ provider: 'p-a', model: 'm' }, { provider: 'p-b', model: 'm' }] } },
    });
    upstream.setBehaviour('a', { failStatus: 503, times: 1 });
    expect(await served(gateway, 'chat')).toBe('served by b');
    expect((await deployments(gateway)).get('p-a/m')).toMatchObject({ state: 'cooling', errors: { upstream_unavailable: 1 } });
    // Cooling: not asked again.
    const asked = upstream.received.filter((request) => request.deployment === 'a').length;
    expect(await served(gateway, 'chat')).toBe('served by b');
    expect(upstream.received.filter((request) => request.deployment === 'a')).toHaveLength(asked);
    await sleep(350);
    expect((await deployments(gateway)).get('p-a/m')?.state).toBe('half-open');
    expect(await served(gateway, 'chat')).toBe('served by a');
    expect((await deployments(gateway)).get('p-a/m')?.state).toBe('healthy');
  });

  it('honours Retry-After over the configured cooldown', async () => {
    const gateway = await gatewayWith({
      providers: providers(['a', 'b']),
      router: { cooldown: { initialMs: 50, maxMs: 5000 } },
      models: { chat: { strategy: 'ordered', deployments: [{ provider: 'p-a', model: 'm' }, { provider: 'p-b', model: 'm' }] } },
    });
    upstream.setBehaviour('a', { failStatus: 429, retryAfterSeconds: 1, times: 1 });
    const before = Date.now();
    expect(await served(gateway, 'chat')).toBe('served by b');
    const view = (await deployments(gateway)).get('p-a/m');
    expect(view?.state).toBe('cooling');
    const until = Date.parse(view?.cooldownUntil ?? '');
    expect(until - before).toBeGreaterThanOrEqual(900);
    expect(until - before).toBeLessThan(2000);
    await sleep(200);
    // Past the 50 ms the policy alone would give, still resting.
    expect(await served(gateway, 'chat')).toBe('served by b');
    await sleep(Math.max(0, until - Date.now() + 50));
    expect(await served(gateway, 'chat')).toBe('served by a');
  });

  it('a key refused with 401 is taken out alone: the other key serves, and the admin view and the log say so', async () => {
    upstream.revokeKey(keys[0]!);
    const gateway = await gatewayWith({
      providers: { 'p-a': { type: 'openai', baseUrl: upstream.baseUrlOf('a'), apiKeys: keys } },
      models: { chat: { deployments: [{ provider: 'p-a', model: 'm' }] } },
    });
    for (let index = 0; index < 6; index += 1) expect(await served(gateway, 'chat')).toBe('served by a');
    // The refused key was sent once, never again.
    expect(upstream.received.filter((request) => request.key === keys[0])).toHaveLength(1);
    const view = (await deployments(gateway)).get('p-a/m');
    expect(view?.state).toBe('healthy');
    expect(view?.keys.map((key) => [key.id, key.state])).toEqual([
      ['p-a#1', 'disabled'],
      ['p-a#2', 'healthy'],
    ]);
    expect(JSON.stringify(view)).not.toContain(keys[1]);
    expect(gateway.logs.join('')).toMatch(/"keyId":"p-a#1".*the provider refused this key/);
    expect(gateway.logs.join('')).not.toContain(keys[0]);
    // The admin reset brings it back (and 404 names an unknown id).
    const reset = await fetch(`${gateway.url}/admin/deployments/${encodeURIComponent('p-a#1')}/reset`, { method: 'POST', headers: asAdmin(gateway) });
    expect(reset.status).toBe(200);
    expect((await deployments(gateway)).get('p-a/m')?.keys[0]?.state).toBe('healthy');
    const unknown = await fetch(`${gateway.url}/admin/deployments/nope/reset`, { method: 'POST', headers: asAdmin(gateway) });
    expect(await readErrorAnswer(unknown)).toMatchObject({ status: 404, code: 'deployment_not_found' });
  });

  it('every deployment cooling down: 503 pool_unavailable naming the pool, with Retry-After', async () => {
    const gateway = await gatewayWith({
      providers: providers(['a', 'b']),
      router: { cooldown: { initialMs: 4000, maxMs: 4000 } },
      models: { chat: { deployments: [{ provider: 'p-a', model: 'm' }, { provider: 'p-b', model: 'm' }] } },
    });
    upstream.setBehaviour('a', { failStatus: 503 });
    upstream.setBehaviour('b', { failStatus: 503 });
    // Both fail: the client gets the last failure.
    expect(await readErrorAnswer(await postChat(gateway.url, { model: 'chat', stream: false, headers: asAdmin(gateway) }))).toMatchObject({ status: 503, code: 'upstream_unavailable' });
    const response = await postChat(gateway.url, { model: 'chat', stream: false, headers: asAdmin(gateway) });
    expect(response.status).toBe(503);
    const retryAfter = Number(response.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(4);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('pool_unavailable');
    expect(body.error.message).toContain('"chat"');
    expect(upstream.received).toHaveLength(2);
  });
});

describe('retries', () => {
  it('moves to the next deployment before the first token, and names it, the key and the attempts in the usage row and the log line', async () => {
    const gateway = await gatewayWith({
      providers: providers(['a', 'b']),
      models: { chat: { strategy: 'ordered', deployments: [{ provider: 'p-a', model: 'm' }, { provider: 'p-b', model: 'm' }] } },
    });
    upstream.setBehaviour('a', { failStatus: 502, times: 1 });
    expect(await served(gateway, 'chat', true)).toBe('served by b');
    await gateway.app.generations.flushUsage();
    const [row] = await gateway.app.store.usage.recent({ limit: 1 });
    expect(row).toMatchObject({ model: 'chat', provider: 'p-b', deployment: 'p-b/m', providerKeyId: 'p-b#1', attempts: 2, outcome: 'completed' });
    await sleep(20);
    const requestLine = gateway.logs.find((line) => line.includes('"msg":"request"') && line.includes('/v1/chat/completions'));
    expect(requestLine).toContain('"deployment":"p-b/m"');
    expect(requestLine).toContain('"providerKeyId":"p-b#1"');
    expect(requestLine).toContain('"attempts":2');
    expect(requestLine).not.toContain(keys[0]);
  });

  it('never retries once the first token reached the client', async () => {
    upstream.setBehaviour('a', { dropAfterFirstToken: true });
    const gateway = await gatewayWith({
      providers: providers(['a', 'b']),
      models: { chat: { strategy: 'ordered', deployments: [{ provider: 'p-a', model: 'm' }, { provider: 'p-b', model: 'm' }] } },
    });
    const response = await postChat(gateway.url, { model: 'chat', headers: asAdmin(gateway) });
    expect(response.status).toBe(200);
    const answer = await readStream(response);
    expect(answer.content).toBe('served ');
    expect(answer.errorCode).toBeDefined();
    expect(upstream.received.filter((request) => request.deployment === 'b')).toHaveLength(0);
  });
});

describe('provider budgets', () => {
  it('moves to another deployment when a provider is at its limit, and refuses with 429 when none can wait', async () => {
    const gateway = await gatewayWith({
      providers: providers(['a', 'b'], { a: { limits: { requestsPerMinute: 2 } }, b: { limits: { requestsPerMinute: 1 } } }),
      router: { queueTimeoutMs: 200 },
      models: { chat: { strategy: 'ordered', deployments: [{ provider: 'p-a', model: 'm' }, { provider: 'p-b', model: 'm' }] } },
    });
    expect(await served(gateway, 'chat')).toBe('served by a');
    expect(await served(gateway, 'chat')).toBe('served by a');
    expect(await served(gateway, 'chat')).toBe('served by b');
    // Both budgets are used up for ~30 s and more, longer than the 200 ms a request may wait.
    const started = Date.now();
    const refused = await postChat(gateway.url, { model: 'chat', stream: false, headers: asAdmin(gateway) });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(refused.headers.get('retry-after')).not.toBeNull();
    expect(await readErrorAnswer(refused)).toMatchObject({ status: 429, code: 'provider_limit_reached' });
    // Nothing was sent beyond the budgets: no 429 was collected from upstream.
    expect(upstream.received).toHaveLength(3);
  });
});

describe('who may use what', () => {
  it('through the openai package: an allowed pool answers, another model is 403 model_not_allowed, models.list is filtered', async () => {
    const gateway = await gatewayWith({
      providers: providers(['a']),
      models: { chat: { deployments: [{ provider: 'p-a', model: 'm' }] }, other: { deployments: [{ provider: 'p-a', model: 'n' }] } },
    });
    const { key } = await gateway.app.keys.create({ userId: 'alice', role: 'user', models: ['chat'] });
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0, timeout: 10_000 });
    const completion = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices[0]?.message.content).toBe('served by a');
    const refusal: unknown = await client.chat.completions.create({ model: 'other', messages: [{ role: 'user', content: 'hi' }] }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((refusal as InstanceType<typeof OpenAI.PermissionDeniedError>).code).toBe('model_not_allowed');
    const listed = [];
    for await (const model of client.models.list()) listed.push(model.id);
    expect(listed).toEqual(['chat']);
  });
});

describe('cluster mode', () => {
  let clusterServices: ClusterServices[] = [];
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((gateway) => gateway.close()));
    await Promise.all(clusterServices.map((services) => services.close()));
    clusterServices = [];
  });

  /** A cluster node of `config` (its cluster section included), with an admin key; closed after the test. */
  async function startClusterNode(config: Record<string, unknown>): Promise<TestGateway> {
    const resolved = resolveConfig({ ...config, server: { port: 0 } }, {});
    const services = await openCluster(resolved.cluster!, resolved, createLogger('silent'));
    clusterServices.push(services);
    const node = await startGateway(config, {}, services.dependencies);
    gateways.push(node);
    return withAdmin(node);
  }

  it('three nodes sharing one Redis share a cooldown: one node sees the failure, none of them asks that deployment again', async () => {
    if (!(await redisAvailable())) return;
    const keyPrefix = uniqueKeyPrefix();
    const raw = {
      auth: { mode: 'keys' },
      store: { url: 'sqlite::memory:' },
      cluster: { redisUrl, keyPrefix },
      router: { cooldown: { initialMs: 5000, maxMs: 5000 } },
      providers: providers(['a', 'b']),
      models: { chat: { strategy: 'ordered', deployments: [{ provider: 'p-a', model: 'm' }, { provider: 'p-b', model: 'm' }] } },
    };
    const nodes: TestGateway[] = [];
    for (const nodeId of ['pool-1', 'pool-2', 'pool-3']) nodes.push(await startClusterNode({ ...raw, cluster: { ...raw.cluster, nodeId } }));
    upstream.setBehaviour('a', { failStatus: 503, times: 1 });
    expect(await served(nodes[0]!, 'chat')).toBe('served by b');
    expect(await served(nodes[1]!, 'chat')).toBe('served by b');
    expect(await served(nodes[2]!, 'chat')).toBe('served by b');
    expect(upstream.received.filter((request) => request.deployment === 'a')).toHaveLength(1);
    expect((await deployments(nodes[2]!)).get('p-a/m')?.state).toBe('cooling');
  });

  it('a model with one deployment: a key refused on one node is refused at once on a node with cluster.recentHealthMs 0, and within it on the others', async () => {
    if (!(await redisAvailable())) return;
    const keyPrefix = uniqueKeyPrefix();
    const raw = {
      auth: { mode: 'keys' },
      store: { url: 'sqlite::memory:' },
      providers: providers(['a']),
      models: { solo: { deployments: [{ provider: 'p-a', model: 'm' }] } },
    };
    const nodes: TestGateway[] = [];
    // The third node's window is long so that a slow machine cannot close it during the test.
    for (const [nodeId, recentHealthMs] of [['solo-1', 1000], ['solo-2', 0], ['solo-3', 10_000]] as const) {
      nodes.push(await startClusterNode({ ...raw, cluster: { redisUrl, keyPrefix, nodeId, recentHealthMs } }));
    }
    for (const node of nodes) expect(await served(node, 'solo')).toBe('served by a');
    const sent = () => upstream.received.filter((request) => request.deployment === 'a').length;
    expect(sent()).toBe(3);

    upstream.revokeKey(keys[0]!);
    const refusal = async (node: TestGateway) => readErrorAnswer(await postChat(node.url, { model: 'solo', headers: asAdmin(node) }));
    try {
      expect(await refusal(nodes[0]!)).toMatchObject({ status: 502, code: 'upstream_auth_failed' });
      expect(sent()).toBe(4);
      // Reads Redis on every request: the key is disabled there, so the provider is not asked.
      expect(await refusal(nodes[1]!)).toMatchObject({ status: 503, code: 'pool_unavailable' });
      expect(sent()).toBe(4);
      // Goes on its healthy read of a moment ago: the provider refuses the key once more, and then this node knows.
      expect(await refusal(nodes[2]!)).toMatchObject({ status: 502, code: 'upstream_auth_failed' });
      expect(sent()).toBe(5);
      expect(await refusal(nodes[2]!)).toMatchObject({ status: 503, code: 'pool_unavailable' });
      expect(sent()).toBe(5);
    } finally {
      // A disabled key is kept in Redis until reset: the admin reset leaves nothing behind.
      const reset = await fetch(`${nodes[0]!.url}/admin/deployments/${encodeURIComponent('p-a#1')}/reset`, { method: 'POST', headers: asAdmin(nodes[0]!) });
      expect(reset.status).toBe(200);
    }
  });
});
