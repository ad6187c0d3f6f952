// The spark provider end to end: signed WebSocket handshake checked by a mock that verifies it as
// iFlytek does, frames relayed through the OpenAI-compatible route, errors mapped, cancellation.
import OpenAI from 'openai';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockSpark, sparkCredentials, type MockSpark } from './support/mock-spark.js';
import { abortStreamAfterFirstRead, startGateway, type TestGateway } from './support/gateway.js';
import { cancelWithinMs } from './support/wait.js';

let upstream: MockSpark;
let gateway: TestGateway;
let client: OpenAI;

const sparkProvider = (overrides: Record<string, unknown> = {}) => ({ type: 'spark', baseUrl: upstream.baseUrl, ...sparkCredentials, ...overrides });

beforeAll(async () => {
  upstream = await startMockSpark();
  gateway = await startGateway({
    providers: {
      spark: sparkProvider(),
      wrongsecret: sparkProvider({ apiSecret: 'not-the-secret-value-42' }),
      wrongapp: sparkProvider({ appId: 'someone-else' }),
    },
    models: { max: { provider: 'spark', model: 'generalv3.5' } },
  });
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await gateway.close();
  await upstream.close();
});
beforeEach(() => upstream.reset());

async function post(body: Record<string, unknown>): Promise<{ status: number; text: string }> {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, text: await response.text() };
}

describe('spark provider', () => {
  it('streams the exact text with usage, sending the documented request frame', async () => {
    const stream = await client.chat.completions.create({
      model: 'max',
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.5,
      max_tokens: 1024,
      user: 'user-with-a-rather-long-identifier-0123456789',
      messages: [
        { role: 'system', content: '简洁' },
        { role: 'user', content: '你好' },
      ],
    });
    let text = '';
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('答复[你好] 完成 🙂');
    expect(usage).toEqual({ prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 });
    expect(upstream.frames[0]).toEqual({
      header: { app_id: sparkCredentials.appId, uid: 'user-with-a-rather-long-identifi' },
      parameter: { chat: { domain: 'generalv3.5', temperature: 0.5, max_tokens: 1024 } },
      payload: { message: { text: [{ role: 'system', content: '简洁' }, { role: 'user', content: '你好' }] } },
    });
  });

  it('answers without streaming', async () => {
    const completion = await client.chat.completions.create({ model: 'spark/lite', messages: [{ role: 'user', content: 'q' }] });
    expect(completion.choices[0]?.message.content).toBe('答复[q] 完成 🙂');
    expect((upstream.frames[0]?.['parameter'] as { chat: { domain: string } }).chat.domain).toBe('lite');
  });

  it('a wrong secret is refused (401) with a clear error that does not contain the secret', async () => {
    const result = await post({ model: 'wrongsecret/generalv3.5', messages: [{ role: 'user', content: 'q' }] });
    expect(result.status).toBe(502);
    expect(result.text).toContain('upstream_auth_failed');
    expect(result.text).toContain('apiSecret');
    expect(result.text).not.toContain('not-the-secret-value-42');
    expect(gateway.logs.join('')).not.toContain('not-the-secret-value-42');
  });

  it('a stale date is refused (403) with a message that points at the clock', async () => {
    const skewed = await startGateway({ providers: { spark: sparkProvider() } }, {}, { now: () => Date.now() - 10 * 60_000 });
    try {
      const response = await fetch(`${skewed.url}/v1/chat/completions`, {
        method: 'POST',
        body: JSON.stringify({ model: 'spark/generalv3.5', messages: [{ role: 'user', content: 'q' }] }),
      });
      expect(response.status).toBe(502);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('upstream_auth_failed');
      expect(body.error.message).toContain('clock');
    } finally {
      await skewed.close();
    }
  });

  it('a wrong app id (11200) maps to upstream_auth_failed and keeps the sid', async () => {
    const result = await post({ model: 'wrongapp/generalv3.5', messages: [{ role: 'user', content: 'q' }] });
    expect(result.status).toBe(502);
    expect(result.text).toContain('11200');
    expect(result.text).toContain('sid cht000b1234');
  });

  it.each([
    [10013, 400, 'upstream_content_filtered'],
    [10907, 400, 'upstream_bad_request'],
    [11201, 429, 'upstream_quota_exceeded'],
    [11202, 429, 'upstream_rate_limited'],
    [10222, 503, 'upstream_unavailable'],
  ])('error code %i → %i %s', async (errorCode, status, code) => {
    upstream.plan = { errorCode };
    const result = await post({ model: 'max', messages: [{ role: 'user', content: 'q' }] });
    expect(result.status).toBe(status);
    expect(result.text).toContain(`"code":"${code}"`);
  });

  it('a socket closed before the status 2 frame is an error, never an empty success', async () => {
    upstream.plan = { dropAfterFirst: true };
    const result = await post({ model: 'max', stream: true, messages: [{ role: 'user', content: 'q' }] });
    expect(result.text).toContain('答复');
    expect(result.text).toContain('"code":"upstream_stream_interrupted"');
    expect(result.text).not.toContain('[DONE]');
  });

  it('an unknown model names the known versions', async () => {
    const result = await post({ model: 'spark/gpt-9', messages: [{ role: 'user', content: 'q' }] });
    expect(result.status).toBe(404);
    expect(result.text).toContain('generalv3.5');
  });

  it('closes the upstream socket within a second of the client leaving', async () => {
    upstream.plan = { pieces: Array.from({ length: 40 }, (_, index) => `p${index.toString()} `), delayMs: 40 };
    const abortedAt = await abortStreamAfterFirstRead(gateway.url, { model: 'max', stream: true, messages: [{ role: 'user', content: 'q' }] });
    expect((await upstream.closes[0]!) - abortedAt).toBeLessThan(cancelWithinMs);
  });

  it('500 simultaneous generations for different users: each gets only its own text', async () => {
    const agent = new Agent({ connections: 600 });
    try {
      const results = await Promise.all(
        Array.from({ length: 500 }, async (_, index) => {
          const question = `用户${index.toString()}`;
          const response = await request(`${gateway.url}/v1/chat/completions`, {
            method: 'POST',
            dispatcher: agent,
            body: JSON.stringify({ model: 'max', stream: true, user: `u${index.toString()}`, messages: [{ role: 'user', content: question }] }),
          });
          const text = await response.body.text();
          const content = text
            .split('\n')
            .filter((line) => line.startsWith('data: {'))
            .map((line) => (JSON.parse(line.slice(6)) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '')
            .join('');
          return { question, content };
        }),
      );
      for (const { question, content } of results) expect(content).toBe(`答复[${question}] 完成 🙂`);
      expect(new Set(upstream.frames.map((frame) => (frame['header'] as { uid: string }).uid)).size).toBe(500);
    } finally {
      await agent.close();
    }
  });
});
