// The qianfan provider end to end: the access token fetched once and shared, refreshed and
// retried on 110/111, messages reshaped to ERNIE's rules, result streams relayed, error codes
// mapped — against a mock that enforces the service's rules.
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockQianfan, type MockQianfan } from './support/mock-qianfan.js';
import { abortStreamAfterFirstRead, startGateway, type TestGateway } from './support/gateway.js';
import { cancelWithinMs } from './support/wait.js';

let upstream: MockQianfan;
let gateway: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  upstream = await startMockQianfan();
  gateway = await startGateway({
    providers: {
      ernie: { type: 'qianfan', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey, secretKey: upstream.secretKey },
      wrongsecret: { type: 'qianfan', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey, secretKey: 'qf-not-the-secret-999' },
    },
    models: { ernie4: { provider: 'ernie', model: 'ernie-4.0-8k' } },
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

describe('qianfan provider', () => {
  it('streams the exact text with usage, system lifted and turns merged to alternate', async () => {
    const stream = await client.chat.completions.create({
      model: 'ernie4',
      stream: true,
      stream_options: { include_usage: true },
      messages: [
        { role: 'system', content: '你是助手' },
        { role: 'user', content: '第一' },
        { role: 'user', content: '第二' },
      ],
    });
    let text = '';
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('文心一言：[第一\n第二] 🙂');
    expect(usage).toEqual({ prompt_tokens: 7, completion_tokens: 9, total_tokens: 16 });
    expect(upstream.chats[0]?.endpoint).toBe('completions_pro');
    expect(upstream.chats[0]?.body).toMatchObject({ system: '你是助手', messages: [{ role: 'user', content: '第一\n第二' }], stream: true });
  });

  it('answers without streaming', async () => {
    const completion = await client.chat.completions.create({ model: 'ernie/ernie-speed-128k', messages: [{ role: 'user', content: 'q' }] });
    expect(completion.choices[0]?.message.content).toBe('文心一言：[q] 🙂');
    expect(upstream.chats[0]?.endpoint).toBe('ernie-speed-128k');
  });

  it('fetches the token once for many concurrent requests, and caches it', async () => {
    const fresh = await startGateway({ providers: { ernie: { type: 'qianfan', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey, secretKey: upstream.secretKey } } });
    try {
      const ask = () => fetch(`${fresh.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'ernie/ernie-lite-8k', messages: [{ role: 'user', content: 'q' }] }) }).then((response) => response.status);
      expect(await Promise.all(Array.from({ length: 20 }, ask))).toEqual(Array(20).fill(200));
      expect(await ask()).toBe(200);
      expect(upstream.tokenRequests).toBe(1);
    } finally {
      await fresh.close();
    }
  });

  it('refreshes an expired token (111) and retries once, invisibly to the client', async () => {
    await post({ model: 'ernie4', messages: [{ role: 'user', content: 'warm' }] });
    upstream.reset();
    upstream.expireTokens();
    const result = await post({ model: 'ernie4', messages: [{ role: 'user', content: 'q' }] });
    expect(result.status).toBe(200);
    expect(result.text).toContain('[q]');
    expect(upstream.tokenRequests).toBe(1);
  });

  it('a wrong secret key gets a clear error that does not contain the secret', async () => {
    const result = await post({ model: 'wrongsecret/ernie-4.0-8k', messages: [{ role: 'user', content: 'q' }] });
    expect(result.status).toBe(502);
    expect(result.text).toContain('upstream_auth_failed');
    expect(result.text).toContain('secretKey');
    expect(result.text).not.toContain('qf-not-the-secret-999');
    expect(gateway.logs.join('')).not.toContain('qf-not-the-secret-999');
  });

  it('a conversation that cannot end with a user turn gets a 400 naming messages', async () => {
    const result = await post({ model: 'ernie4', messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] });
    expect(result.status).toBe(400);
    expect(JSON.parse(result.text)).toMatchObject({ error: { code: 'invalid_request', param: 'messages' } });
    expect(upstream.chats).toHaveLength(0);
  });

  it.each([
    [18, 429, 'upstream_rate_limited'],
    [17, 429, 'upstream_quota_exceeded'],
    [336003, 400, 'upstream_bad_request'],
    [336501, 400, 'upstream_bad_request'],
    [336100, 503, 'upstream_unavailable'],
    [336000, 502, 'upstream_error'],
  ])('error_code %i in a JSON body → %i %s', async (errorCode, status, code) => {
    upstream.plan = { errorCode };
    const result = await post({ model: 'ernie4', stream: true, messages: [{ role: 'user', content: 'q' }] });
    expect(result.status).toBe(status);
    expect(result.text).toContain(`"code":"${code}"`);
  });

  it('an error_code inside the SSE stream is an in-band error after the text before it', async () => {
    upstream.plan = { errorCode: 336100, errorInStream: true };
    const result = await post({ model: 'ernie4', stream: true, messages: [{ role: 'user', content: 'q' }] });
    expect(result.text).toContain('文心');
    expect(result.text).toContain('"code":"upstream_unavailable"');
    expect(result.text).not.toContain('[DONE]');
  });

  it('closes the upstream request within a second of the client leaving', async () => {
    upstream.plan = { pieces: Array.from({ length: 40 }, (_, index) => `p${index.toString()}`), delayMs: 40 };
    const abortedAt = await abortStreamAfterFirstRead(gateway.url, { model: 'ernie4', stream: true, messages: [{ role: 'user', content: 'q' }] });
    expect((await upstream.chats[0]!.closed) - abortedAt).toBeLessThan(cancelWithinMs);
  });
});
