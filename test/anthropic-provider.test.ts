// The anthropic provider end to end, through the OpenAI-compatible route and the official openai
// package as the client, against a mock that enforces the Messages API's rules.
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockAnthropic, type MockAnthropic } from './support/mock-anthropic.js';
import { abortStreamAfterFirstRead, startGateway, type TestGateway } from './support/gateway.js';
import { cancelWithinMs } from './support/wait.js';

let upstream: MockAnthropic;
let gateway: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  upstream = await startMockAnthropic();
  gateway = await startGateway({
    providers: {
      claude: { type: 'anthropic', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey, maxTokens: 1000 },
      wrongkey: { type: 'anthropic', baseUrl: upstream.baseUrl, apiKey: 'sk-ant-wrong-secret-987654' },
    },
    models: { sonnet: { provider: 'claude', model: 'claude-sonnet-4-5' } },
  });
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await gateway.close();
  await upstream.close();
});
beforeEach(() => upstream.reset());

const conversation = [
  { role: 'system' as const, content: 'Be brief.' },
  { role: 'user' as const, content: 'Hi' },
  { role: 'assistant' as const, content: 'Hello!' },
  { role: 'user' as const, content: 'And again?' },
];

describe('anthropic provider', () => {
  it('streams the exact text, with the system prompt lifted out and max_tokens defaulted', async () => {
    const stream = await client.chat.completions.create({ model: 'sonnet', stream: true, stream_options: { include_usage: true }, messages: conversation });
    let text = '';
    let usage: unknown;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('Hello from Claude 你好 🙂');
    expect(finish).toBe('stop');
    expect(usage).toEqual({ prompt_tokens: 12, completion_tokens: 34, total_tokens: 46 });
    const sent = upstream.requests[0]!;
    expect(sent.headers['x-api-key']).toBe(upstream.apiKey);
    expect(sent.body).toMatchObject({ model: 'claude-sonnet-4-5', system: 'Be brief.', max_tokens: 1000, stream: true });
    expect((sent.body['messages'] as { role: string }[]).map((message) => message.role)).toEqual(['user', 'assistant', 'user']);
  });

  it('answers without streaming, and passes max_tokens and stop through', async () => {
    upstream.plan = { stopReason: 'max_tokens' };
    const completion = await client.chat.completions.create({ model: 'sonnet', max_tokens: 50, stop: ['END'], messages: [{ role: 'user', content: 'Hi' }] });
    expect(completion.choices[0]?.message.content).toBe('Hello from Claude 你好 🙂');
    expect(completion.choices[0]?.finish_reason).toBe('length');
    expect(completion.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 34 });
    expect(upstream.requests[0]?.body).toMatchObject({ max_tokens: 50, stop_sequences: ['END'], stream: false });
  });

  it('streams tool use as OpenAI tool_calls, and sends tools in Anthropic form', async () => {
    upstream.plan = { pieces: ['Let me look.'], toolUse: { id: 'toolu_1', name: 'get_weather', jsonPieces: ['{"city":', '"北京"}'] } };
    const final = await client.chat.completions
      .stream({
        model: 'sonnet',
        messages: [{ role: 'user', content: 'Weather?' }],
        tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather by city', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
        tool_choice: 'required',
      })
      .finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    expect(call?.type === 'function' ? [call.id, call.function.name, call.function.arguments] : []).toEqual(['toolu_1', 'get_weather', '{"city":"北京"}']);
    expect(upstream.requests[0]?.body['tools']).toEqual([{ name: 'get_weather', description: 'Weather by city', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }]);
    expect(upstream.requests[0]?.body['tool_choice']).toEqual({ type: 'any' });
  });

  it('sends a tool result back as a user tool_result block', async () => {
    await client.chat.completions.create({
      model: 'sonnet',
      messages: [
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"北京"}' } }] },
        { role: 'tool', tool_call_id: 'toolu_1', content: 'Sunny' },
      ],
    });
    expect(upstream.requests[0]?.body['messages']).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather?' }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: '北京' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'Sunny' }] },
    ]);
  });

  it('maps a mid-stream overloaded_error to an in-band error after the text', async () => {
    upstream.plan = { errorType: 'overloaded_error' };
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sonnet', stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
    });
    const text = await response.text();
    expect(text).toContain('Claude 你好');
    expect(text).toContain('"code":"upstream_unavailable"');
    expect(text).not.toContain('[DONE]');
  });

  it('a wrong key is refused with a clear error that does not contain the key', async () => {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'wrongkey/claude-sonnet-4-5', messages: [{ role: 'user', content: 'Hi' }] }),
    });
    expect(response.status).toBe(502);
    const body = await response.text();
    expect(body).toContain('upstream_auth_failed');
    expect(body).not.toContain('sk-ant-wrong-secret-987654');
    expect(gateway.logs.join('')).not.toContain('sk-ant-wrong-secret-987654');
  });

  it('refuses a conversation that cannot start with a user turn, naming the field', async () => {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sonnet', messages: [{ role: 'assistant', content: 'I speak first' }] }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { param: string } }).error.param).toBe('messages');
    expect(upstream.requests).toHaveLength(0);
  });

  it('closes the upstream request within a second of the client leaving', async () => {
    upstream.plan = { pieces: Array.from({ length: 50 }, (_, index) => `w${index.toString()} `), delayMs: 40 };
    const abortedAt = await abortStreamAfterFirstRead(gateway.url, { model: 'sonnet', stream: true, messages: [{ role: 'user', content: 'Hi' }] });
    expect((await upstream.requests[0]!.closed) - abortedAt).toBeLessThan(cancelWithinMs);
  });
});
