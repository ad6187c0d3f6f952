// The OpenAI-compatible route end to end: exact text, usage, headers, the official SDK as client.
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockOpenAi, defaultAnswer, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, openAiConfig, type TestGateway } from './support/gateway.js';

interface Chunk {
  id: string;
  object: string;
  model: string;
  choices: { index: number; delta: { role?: string; content?: string; tool_calls?: unknown[] }; finish_reason: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
}

let upstream: MockOpenAi;
let gateway: TestGateway;

beforeAll(async () => {
  upstream = await startMockOpenAi();
  gateway = await startGateway(openAiConfig(upstream.baseUrl, upstream.apiKey));
});
afterAll(async () => {
  await gateway.close();
  await upstream.close();
});
beforeEach(() => upstream.reset());

function post(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function parseStream(text: string): { chunks: Chunk[]; done: boolean; lines: string[] } {
  const lines = text.split('\n');
  const payloads = lines.filter((line) => line.startsWith('data: ')).map((line) => line.slice(6));
  const done = payloads.at(-1) === '[DONE]';
  return { chunks: payloads.filter((payload) => payload !== '[DONE]').map((payload) => JSON.parse(payload) as Chunk), done, lines };
}

const textOf = (chunks: Chunk[]) => chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');

describe('streamed answers', () => {
  it('relay the upstream text exactly, multi-byte characters split across chunks included', async () => {
    const text = '你好，世界！🙂🚀 naïve café — ещё';
    upstream.plan = { text, chunkCount: 29 };
    const response = await post({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const { chunks, done } = parseStream(await response.text());
    expect(done).toBe(true);
    expect(textOf(chunks)).toBe(text);
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('stop');
    // The client's model name (the alias), never the upstream's.
    expect(new Set(chunks.map((chunk) => chunk.model))).toEqual(new Set(['gpt-test']));
    expect(new Set(chunks.map((chunk) => chunk.object))).toEqual(new Set(['chat.completion.chunk']));
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
  });

  it('write data: lines only, with streaming headers and no compression', async () => {
    const response = await post({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hi' }] }, { 'accept-encoding': 'gzip, br' });
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('cache-control')).toContain('no-cache');
    expect(response.headers.get('x-accel-buffering')).toBe('no');
    expect(response.headers.get('content-encoding')).toBeNull();
    const { lines } = parseStream(await response.text());
    for (const line of lines) expect(line === '' || line.startsWith('data: ')).toBe(true);
  });

  it('always ask the upstream for usage, but send the usage chunk only when the client asked', async () => {
    upstream.plan = { usage: { prompt_tokens: 7, completion_tokens: 9, total_tokens: 16 } };
    const without = parseStream(await (await post({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hi' }] })).text());
    expect(without.chunks.every((chunk) => !('usage' in chunk))).toBe(true);
    expect(upstream.requests[0]?.body['stream_options']).toEqual({ include_usage: true });

    const withUsage = parseStream(
      await (await post({ model: 'gpt-test', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] })).text(),
    );
    const last = withUsage.chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toEqual({ prompt_tokens: 7, completion_tokens: 9, total_tokens: 16 });
    expect(withUsage.chunks.slice(0, -1).every((chunk) => chunk.usage === null)).toBe(true);
    expect(textOf(withUsage.chunks)).toBe(defaultAnswer);
  });

  it('pass sampling fields and unknown fields through, and set model to the upstream name', async () => {
    await (await post({ model: 'gpt-test', stream: true, temperature: 0.3, max_tokens: 20, seed: 7, top_k: 5, messages: [{ role: 'user', content: 'hi' }] })).text();
    const body = upstream.requests[0]?.body;
    expect(body).toMatchObject({ model: 'gpt-4o-mini', temperature: 0.3, max_tokens: 20, seed: 7, top_k: 5, stream: true });
    expect(upstream.requests[0]?.headers.authorization).toBe(`Bearer ${upstream.apiKey}`);
  });
});

describe('non-streamed answers', () => {
  it('return one chat.completion with the exact text and usage', async () => {
    upstream.plan = { text: '一二三 four 🙂', usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } };
    const response = await post({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { object: string; model: string; choices: { message: { content: string; role: string }; finish_reason: string }[]; usage: unknown };
    expect(body.object).toBe('chat.completion');
    expect(body.model).toBe('gpt-test');
    expect(body.choices[0]?.message).toMatchObject({ role: 'assistant', content: '一二三 four 🙂' });
    expect(body.choices[0]?.finish_reason).toBe('stop');
    expect(body.usage).toEqual({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 });
    expect(upstream.requests[0]?.body['stream']).toBe(false);
  });
});

describe('the official openai package as the client', () => {
  const client = () => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'sk-client-unused', maxRetries: 0 });

  it('streams with include_usage', async () => {
    upstream.plan = { text: 'SDK 流式 ✓', chunkCount: 5, usage: { prompt_tokens: 2, completion_tokens: 5, total_tokens: 7 } };
    const stream = await client().chat.completions.create({ model: 'gpt-test', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });
    let text = '';
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('SDK 流式 ✓');
    expect(usage).toEqual({ prompt_tokens: 2, completion_tokens: 5, total_tokens: 7 });
  });

  it('completes without streaming', async () => {
    const completion = await client().chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices[0]?.message.content).toBe(defaultAnswer);
  });

  it('rebuilds streamed tool calls exactly', async () => {
    upstream.handlers.push((_request, response, body) => {
      expect(body['tools']).toHaveLength(1);
      expect(body['tool_choice']).toBe('auto');
      const chunk = (delta: unknown, finish: string | null = null) =>
        `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(chunk({ role: 'assistant', content: null }));
      response.write(chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }] }));
      for (const piece of ['{"ci', 'ty":"', '北京', '"}']) response.write(chunk({ tool_calls: [{ index: 0, function: { arguments: piece } }] }));
      response.write(chunk({ tool_calls: [{ index: 1, id: 'call_2', type: 'function', function: { name: 'get_time', arguments: '{}' } }] }));
      response.write(chunk({}, 'tool_calls'));
      response.end('data: [DONE]\n\n');
      return true;
    });
    const stream = client().chat.completions.stream({
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'weather?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
      tool_choice: 'auto',
    });
    const final = await stream.finalChatCompletion();
    const calls = final.choices[0]?.message.tool_calls ?? [];
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    expect(calls.map((call) => (call.type === 'function' ? [call.id, call.function.name, call.function.arguments] : []))).toEqual([
      ['call_1', 'get_weather', '{"city":"北京"}'],
      ['call_2', 'get_time', '{}'],
    ]);
  });

  it('raises typed errors: 429 as RateLimitError, an unknown model as NotFoundError', async () => {
    upstream.handlers.push((_request, response) => {
      response.writeHead(429, { 'content-type': 'application/json', 'retry-after': '3' });
      response.end(JSON.stringify({ error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' } }));
      return true;
    });
    await expect(client().chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] })).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    await expect(client().chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});
