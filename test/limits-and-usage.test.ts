// Limits as a caller meets them (429 with Retry-After and a body naming the limit; per key and
// per user; quotas that survive a restart) and the usage row every generation leaves: completed,
// cancelled (estimated), failed and refused, aggregated by /admin/usage.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockOpenAi, sendError, type MockOpenAi } from './support/mock-openai.js';
import { abortStreamAfterFirstRead, openAiConfig, startGateway, type TestGateway } from './support/gateway.js';
import { parseOpenAiStream } from './support/chat-client.js';
import { waitFor } from './support/wait.js';

const directory = mkdtempSync(join(tmpdir(), 'sluice-limits-'));
let upstream: MockOpenAi;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  upstream = await startMockOpenAi();
});
afterAll(async () => {
  await upstream?.close();
  rmSync(directory, { recursive: true, force: true });
});
beforeEach(() => upstream.reset());
afterEach(async () => {
  for (const gateway of gateways.splice(0)) await gateway.close();
});

async function start(extra: Record<string, unknown> = {}): Promise<TestGateway> {
  const gateway = await startGateway(openAiConfig(upstream.baseUrl, upstream.apiKey, { auth: { mode: 'keys' }, ...extra }));
  gateways.push(gateway);
  return gateway;
}

function chat(gateway: TestGateway, key: string, body: Record<string, unknown> = {}): Promise<Response> {
  return fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hi' }], ...body }),
    signal: AbortSignal.timeout(10_000),
  });
}

interface Refusal {
  status: number;
  retryAfter: string | null;
  code: string;
  message: string;
}

async function refusal(response: Response): Promise<Refusal> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  return { status: response.status, retryAfter: response.headers.get('retry-after'), code: body.error.code, message: body.error.message };
}

describe('limits', () => {
  it('requests per minute on a key: the next request is a 429 with Retry-After naming the limit', async () => {
    const gateway = await start();
    const { key } = await gateway.app.keys.create({ userId: 'u1', role: 'user', limits: { requestsPerMinute: 2 } });
    for (let index = 0; index < 2; index++) expect((await chat(gateway, key)).status).toBe(200);
    const refused = await refusal(await chat(gateway, key));
    expect(refused).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(refused.message).toContain('key.requestsPerMinute');
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(refused.retryAfter)).toBeLessThanOrEqual(30);
    expect(upstream.requests).toHaveLength(2);
  });

  it('per-user limits from the config hold across all of that user\'s keys', async () => {
    const gateway = await start({ limits: { users: { u2: { requestsPerMinute: 1 } } } });
    const first = await gateway.app.keys.create({ userId: 'u2', role: 'user' });
    const second = await gateway.app.keys.create({ userId: 'u2', role: 'user' });
    expect((await chat(gateway, first.key)).status).toBe(200);
    const refused = await refusal(await chat(gateway, second.key));
    expect(refused).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(refused.message).toContain('user.requestsPerMinute');
    // Another user is not affected.
    const other = await gateway.app.keys.create({ userId: 'u3', role: 'user' });
    expect((await chat(gateway, other.key)).status).toBe(200);
  });

  it('concurrent streams: a second stream while the first runs is refused, and allowed once it ends', async () => {
    const gateway = await start();
    const { key } = await gateway.app.keys.create({ userId: 'u4', role: 'user', limits: { concurrentStreams: 1 } });
    upstream.plan = { delayMs: 60, chunkCount: 5 };
    const running = await chat(gateway, key);
    expect(running.status).toBe(200);
    const refused = await refusal(await chat(gateway, key));
    expect(refused).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(refused.message).toContain('key.concurrentStreams');
    await running.text();
    await waitFor(() => gateway.app.generations.active.size === 0, 'the first generation to end');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await chat(gateway, key)).status).toBe(200);
  });

  it('a daily token quota refuses once used up, and still refuses after a restart', async () => {
    const storeUrl = `sqlite:${join(directory, 'quota.db')}`;
    upstream.plan = { usage: { prompt_tokens: 60, completion_tokens: 50, total_tokens: 110 } };
    let gateway = await start({ store: { url: storeUrl } });
    const { key } = await gateway.app.keys.create({ userId: 'u5', role: 'user', limits: { dailyTokens: 100 } });
    // The first answer is admitted (nothing used yet) and charged 110 tokens when it ends.
    expect(parseOpenAiStream(await (await chat(gateway, key)).text()).done).toBe(true);
    await waitFor(() => gateway.app.generations.active.size === 0, 'the answer to be charged');
    await gateway.app.generations.flushUsage();
    const refused = await refusal(await chat(gateway, key));
    expect(refused).toMatchObject({ status: 429, code: 'quota_exceeded' });
    expect(refused.message).toContain('key.dailyTokens');
    // Seconds until the next UTC midnight.
    const untilMidnight = Math.ceil((Math.floor(Date.now() / 86_400_000 + 1) * 86_400_000 - Date.now()) / 1000);
    expect(Math.abs(Number(refused.retryAfter) - untilMidnight)).toBeLessThanOrEqual(2);

    await gateway.close();
    gateways.splice(gateways.indexOf(gateway), 1);
    gateway = await start({ store: { url: storeUrl } });
    expect(await refusal(await chat(gateway, key))).toMatchObject({ status: 429, code: 'quota_exceeded' });
  });

  it('tokens per minute are charged from the provider\'s actual usage', async () => {
    const gateway = await start();
    const { key } = await gateway.app.keys.create({ userId: 'u6', role: 'user', limits: { tokensPerMinute: 50 } });
    upstream.plan = { usage: { prompt_tokens: 40, completion_tokens: 40, total_tokens: 80 } };
    await (await chat(gateway, key)).text();
    await waitFor(() => gateway.app.generations.active.size === 0, 'the answer to be charged');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const refused = await refusal(await chat(gateway, key));
    expect(refused).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(refused.message).toContain('key.tokensPerMinute');
  });
});

describe('usage rows', () => {
  it('one row per generation: completed, cancelled (estimated), failed and refused; /admin/usage aggregates them', async () => {
    const gateway = await start();
    const admin = await gateway.app.keys.create({ userId: 'ops', role: 'admin' });
    const { key, record } = await gateway.app.keys.create({ userId: 'u7', role: 'user', limits: { requestsPerMinute: 3 } });

    // Completed, with the provider's own counts.
    upstream.plan = { usage: { prompt_tokens: 9, completion_tokens: 8, total_tokens: 17 } };
    await (await chat(gateway, key)).text();

    // Cancelled by the client after the first chunk: counts are estimated.
    upstream.plan = { delayMs: 50, chunkCount: 20 };
    await abortStreamAfterFirstRead(gateway.url, { model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${key}` });
    await waitFor(() => gateway.app.generations.active.size === 0, 'the cancelled generation to end');

    // Failed upstream.
    upstream.handlers.push((_request, response) => {
      sendError(response, 500, 'The server had an error', 'server_error', null);
      return true;
    });
    expect((await chat(gateway, key)).status).toBe(502);

    // Refused: the fourth request of the minute.
    expect((await chat(gateway, key)).status).toBe(429);
    await gateway.app.generations.flushUsage();

    const response = await fetch(`${gateway.url}/admin/usage?groupBy=user,key,model,day&userId=u7`, { headers: { authorization: `Bearer ${admin.key}` } });
    expect(response.status).toBe(200);
    const report = (await response.json()) as { from: string; to: string; data: Record<string, unknown>[] };
    const today = new Date().toISOString().slice(0, 10);
    expect(report.to).toBe(today);
    expect(report.data).toHaveLength(1);
    const row = report.data[0]!;
    expect(row).toMatchObject({ userId: 'u7', keyId: record.id, model: 'gpt-test', day: today, requests: 4, completed: 1, cancelled: 1, errors: 1, refused: 1, estimatedRequests: 2 });
    expect(row['promptTokens'] as number).toBeGreaterThan(9);
    // Each row says which API surface it came through.
    const rows = await gateway.app.store.usage.recent({ limit: 10, userId: 'u7' });
    expect(rows.map((usage) => [usage.outcome, usage.route])).toEqual([
      ['refused', 'chat-completions'],
      ['error', 'chat-completions'],
      ['cancelled', 'chat-completions'],
      ['completed', 'chat-completions'],
    ]);
  });

  it('bad report parameters name the field', async () => {
    const gateway = await start();
    const admin = await gateway.app.keys.create({ userId: 'ops', role: 'admin' });
    for (const [query, param] of [['from=yesterday', 'from'], ['groupBy=user,week', 'groupBy'], ['from=2026-12-02&to=2026-12-01', 'from'], ['colour=red', 'colour']] as const) {
      const response = await fetch(`${gateway.url}/admin/usage?${query}`, { headers: { authorization: `Bearer ${admin.key}` } });
      const body = (await response.json()) as { error: { param: string | null; message: string } };
      expect({ query, status: response.status, param: body.error.param }).toEqual({ query, status: 400, param });
    }
  });
});
