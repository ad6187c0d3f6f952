// The Anthropic Messages API end to end, with the official `@anthropic-ai/sdk` as the client over
// real sockets, against the mocks of Spark (WebSocket, signed URL), ERNIE (OAuth token), a
// signed-http agent (ak-sk signature) and an OpenAI-type upstream: messages.stream() and
// messages.create(), system prompts, tools both ways, x-api-key and Bearer credentials, errors
// as Anthropic bodies before the first byte and `event: error` after it, `ping` heartbeats,
// count_tokens, usage rows, the allowlist, a client that leaves cancelling the upstream within
// 100 ms, and the example of docs/messages.md run as written.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Anthropic, { APIError, AuthenticationError, BadRequestError, NotFoundError, PermissionDeniedError } from '@anthropic-ai/sdk';
import type { RawMessageStreamEvent } from '@anthropic-ai/sdk/resources/messages';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { defaultAnswer, startMockOpenAi, type MockOpenAi } from './support/mock-openai.js';
import { startMockSpark, sparkCredentials, type MockSpark } from './support/mock-spark.js';
import { startMockQianfan, type MockQianfan } from './support/mock-qianfan.js';
import { startMockSignedHttp, type MockSignedHttp } from './support/mock-signed-http.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { cancelWithinMs, waitFor, within } from './support/wait.js';
import { runProcess } from './support/guides.js';
import { demoAnswer } from '../src/providers/mock/answer.js';

let openai: MockOpenAi;
let spark: MockSpark;
let qianfan: MockQianfan;
let signed: MockSignedHttp;
let gateway: TestGateway;
let aliceKey: string;
let alice: Anthropic;

beforeAll(async () => {
  [openai, spark, qianfan, signed] = await Promise.all([startMockOpenAi(), startMockSpark(), startMockQianfan(), startMockSignedHttp()]);
  gateway = await startGateway({
    auth: { mode: 'keys' },
    server: { heartbeatMs: 40 },
    providers: {
      upstream: { type: 'openai', baseUrl: openai.baseUrl, apiKey: openai.apiKey },
      spark: { type: 'spark', baseUrl: spark.baseUrl, ...sparkCredentials },
      ernie: { type: 'qianfan', baseUrl: qianfan.baseUrl, apiKey: qianfan.apiKey, secretKey: qianfan.secretKey },
      agent: { type: 'signed-http', url: `${signed.url}/aksk/agent`, auth: { scheme: 'ak-sk-sha256', ak: signed.ak, sk: signed.sk }, textPath: 'data.content', endWhen: { path: 'code', equals: -200 } },
    },
    models: {
      'gpt-test': { provider: 'upstream', model: 'gpt-4o-mini' },
      'spark-max': { provider: 'spark', model: 'generalv3.5' },
      ernie: { provider: 'ernie', model: 'ernie-4.0-8k' },
      'company-agent': { provider: 'agent', model: 'default' },
    },
  });
  aliceKey = (await gateway.app.keys.create({ userId: 'alice', role: 'user' })).key;
  alice = new Anthropic({ baseURL: gateway.url, apiKey: aliceKey, maxRetries: 0, timeout: 10_000 });
});
afterAll(async () => {
  await gateway?.close();
  await Promise.all([openai?.close(), spark?.close(), qianfan?.close(), signed?.close()]);
});
beforeEach(() => {
  openai.reset();
  spark.reset();
  qianfan.reset();
  signed.reset();
});

async function collect(stream: AsyncIterable<RawMessageStreamEvent>): Promise<RawMessageStreamEvent[]> {
  const events: RawMessageStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

const textOf = (message: Anthropic.Message): string => message.content.map((block) => (block.type === 'text' ? block.text : '')).join('');

/** Tool-call chunks as an OpenAI-compatible upstream streams them: text, then one call in pieces. */
function streamToolCall(response: import('node:http').ServerResponse, body: Record<string, unknown>): true {
  const chunk = (delta: Record<string, unknown>, finishReason: string | null = null) =>
    `data: ${JSON.stringify({ id: 'chatcmpl-tools', object: 'chat.completion.chunk', created: 1, model: String(body['model']), choices: [{ index: 0, delta, finish_reason: finishReason }] })}\n\n`;
  response.writeHead(200, { 'content-type': 'text/event-stream' });
  response.write(chunk({ role: 'assistant', content: 'Let me look. ' }));
  response.write(chunk({ tool_calls: [{ index: 0, id: 'call_weather', type: 'function', function: { name: 'get_weather', arguments: '' } }] }));
  for (const piece of ['{"ci', 'ty":"', '北京', '"}']) response.write(chunk({ tool_calls: [{ index: 0, function: { arguments: piece } }] }));
  response.write(chunk({}, 'tool_calls'));
  response.write(`data: ${JSON.stringify({ id: 'chatcmpl-tools', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 40, completion_tokens: 12, total_tokens: 52 } })}\n\n`);
  response.end('data: [DONE]\n\n');
  return true;
}

const weatherTool: Anthropic.Tool = { name: 'get_weather', description: 'The weather in a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };

describe('messages.stream() and messages.create() over every provider type', () => {
  it('Spark: the event sequence, the text, the provider\'s usage, stop_reason end_turn', async () => {
    const stream = alice.messages.stream({ model: 'spark-max', max_tokens: 100, messages: [{ role: 'user', content: '你好' }] });
    const events = await collect(stream);
    const types = events.map((event) => event.type);
    expect(types[0]).toBe('message_start');
    expect(types[1]).toBe('content_block_start');
    expect(types.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    const message = await stream.finalMessage();
    expect(textOf(message)).toBe('答复[你好] 完成 🙂');
    expect(message).toMatchObject({ role: 'assistant', model: 'spark-max', stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 5, output_tokens: 6 } });
    expect(message.id).toMatch(/^msg_/);
  });

  it('ERNIE: messages.create() answers one message, with the system prompt sent the way Qianfan takes it', async () => {
    const message = await alice.messages.create({ model: 'ernie', max_tokens: 100, system: [{ type: 'text', text: 'Be brief.' }], messages: [{ role: 'user', content: '天气' }] });
    expect(message.type).toBe('message');
    expect(textOf(message)).toBe('文心一言：[天气] 🙂');
    expect(message.usage).toMatchObject({ input_tokens: 7, output_tokens: 9 });
    expect(message.stop_reason).toBe('end_turn');
    expect(qianfan.chats[0]?.body).toMatchObject({ system: 'Be brief.', messages: [{ role: 'user', content: '天气' }] });
  });

  it('a signed-http agent: the text streams, and the usage is Sluice\'s estimate', async () => {
    const stream = alice.messages.stream({ model: 'company-agent', max_tokens: 100, messages: [{ role: 'user', content: '问题' }] });
    const deltas: string[] = [];
    stream.on('text', (text) => deltas.push(text));
    const message = await stream.finalMessage();
    expect(deltas.join('')).toBe('智能体回答：问题');
    expect(textOf(message)).toBe('智能体回答：问题');
    expect(message.usage.output_tokens).toBeGreaterThan(0);
    expect(signed.requests).toHaveLength(1);
  });

  it('an OpenAI-type provider: system as a string, sampling fields in chat names, a usage row with route messages', async () => {
    openai.plan = { usage: { prompt_tokens: 21, completion_tokens: 8, total_tokens: 29 } };
    const message = await alice.messages.stream({ model: 'gpt-test', max_tokens: 64, temperature: 0.3, stop_sequences: ['END'], system: 'You are terse.', messages: [{ role: 'user', content: 'Hi' }] }).finalMessage();
    expect(textOf(message)).toBe(defaultAnswer);
    expect(message.usage).toMatchObject({ input_tokens: 21, output_tokens: 8 });
    expect(openai.requests[0]?.body).toMatchObject({
      model: 'gpt-4o-mini',
      stream: true,
      max_tokens: 64,
      temperature: 0.3,
      stop: ['END'],
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Hi' },
      ],
    });
    await waitFor(() => gateway.app.generations.active.size === 0, 'the generation to end');
    await gateway.app.generations.flushUsage();
    const [row] = await gateway.app.store.usage.recent({ limit: 1, userId: 'alice' });
    expect(row).toMatchObject({ route: 'messages', model: 'gpt-test', provider: 'upstream', promptTokens: 21, completionTokens: 8, outcome: 'completed' });
  });
});

describe('tools both ways', () => {
  it('a tool call streams as a tool_use block (input_json_delta), and its tool_result goes back as a tool message', async () => {
    openai.handlers.push((_request, response, body) => streamToolCall(response, body));
    const stream = alice.messages.stream({ model: 'gpt-test', max_tokens: 100, tools: [weatherTool], tool_choice: { type: 'auto' }, messages: [{ role: 'user', content: 'Weather in Beijing?' }] });
    const jsonDeltas: string[] = [];
    stream.on('inputJson', (partial) => jsonDeltas.push(partial));
    const message = await stream.finalMessage();
    expect(message.stop_reason).toBe('tool_use');
    expect(message.content).toEqual([
      { type: 'text', text: 'Let me look. ' },
      { type: 'tool_use', id: 'call_weather', name: 'get_weather', input: { city: '北京' } },
    ]);
    expect(jsonDeltas).toEqual(['{"ci', 'ty":"', '北京', '"}']);
    expect(openai.requests[0]?.body).toMatchObject({
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters: weatherTool.input_schema } }],
      tool_choice: 'auto',
    });

    openai.reset();
    const answer = await alice.messages.create({
      model: 'gpt-test',
      max_tokens: 100,
      tools: [weatherTool],
      messages: [
        { role: 'user', content: 'Weather in Beijing?' },
        { role: 'assistant', content: message.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_weather', content: [{ type: 'text', text: 'Sunny, 25°C' }] }, { type: 'text', text: 'And tomorrow?' }] },
      ],
    });
    expect(textOf(answer)).toBe(defaultAnswer);
    expect(openai.requests[0]?.body['messages']).toEqual([
      { role: 'user', content: 'Weather in Beijing?' },
      { role: 'assistant', content: 'Let me look. ', tool_calls: [{ id: 'call_weather', type: 'function', function: { name: 'get_weather', arguments: '{"city":"北京"}' } }] },
      { role: 'tool', tool_call_id: 'call_weather', content: 'Sunny, 25°C' },
      { role: 'user', content: 'And tomorrow?' },
    ]);
  });

  it('messages.create() assembles the tool_use block with its parsed input', async () => {
    openai.handlers.push((_request, response, body) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ id: 'c', object: 'chat.completion', created: 1, model: String(body['model']), choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] }, finish_reason: 'tool_calls' }], usage: { prompt_tokens: 30, completion_tokens: 9, total_tokens: 39 } }));
      return true;
    });
    const message = await alice.messages.create({ model: 'gpt-test', max_tokens: 100, tools: [weatherTool], tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true }, messages: [{ role: 'user', content: 'Paris?' }] });
    expect(message.content).toEqual([{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }]);
    expect(message.stop_reason).toBe('tool_use');
    expect(openai.requests[0]?.body).toMatchObject({ stream: false, tool_choice: { type: 'function', function: { name: 'get_weather' } }, parallel_tool_calls: false });
  });
});

describe('credentials and errors', () => {
  it('accepts Authorization: Bearer as well as x-api-key, with anthropic-version', async () => {
    const bearer = new Anthropic({ baseURL: gateway.url, apiKey: null, authToken: aliceKey, maxRetries: 0 });
    const message = await bearer.messages.create({ model: 'gpt-test', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] });
    expect(textOf(message)).toBe(defaultAnswer);
  });

  it('a wrong key is 401 with an Anthropic error body', async () => {
    const wrong = new Anthropic({ baseURL: gateway.url, apiKey: 'sk-sluice-not-a-real-key-000000000000', maxRetries: 0 });
    const error = await wrong.messages.create({ model: 'gpt-test', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as AuthenticationError).error).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
  });

  it('a bad field is 400 invalid_request_error naming it; an unknown model is 404', async () => {
    const missing = await alice.messages.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'Hi' }] } as unknown as Anthropic.MessageCreateParamsNonStreaming).catch((caught: unknown) => caught);
    expect(missing).toBeInstanceOf(BadRequestError);
    expect((missing as BadRequestError).error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    expect((missing as BadRequestError).message).toContain('max_tokens');
    const serverTool = await alice.messages
      .create({ model: 'gpt-test', max_tokens: 10, tools: [{ type: 'web_search_20250305', name: 'web_search' }], messages: [{ role: 'user', content: 'Hi' }] })
      .catch((caught: unknown) => caught);
    expect((serverTool as BadRequestError).message).toContain('tools[0].type');
    const unknown = await alice.messages.create({ model: 'no-such-model', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] }).catch((caught: unknown) => caught);
    expect(unknown).toBeInstanceOf(NotFoundError);
    expect(openai.requests).toHaveLength(0);
  });

  it('a model outside the key\'s allowlist is 403 permission_error', async () => {
    const { key } = await gateway.app.keys.create({ userId: 'carol', role: 'user', models: ['ernie'] });
    const carol = new Anthropic({ baseURL: gateway.url, apiKey: key, maxRetries: 0 });
    const error = await carol.messages.create({ model: 'gpt-test', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect((error as PermissionDeniedError).error).toMatchObject({ error: { type: 'permission_error' } });
  });

  it('an upstream failure before the first byte is the error\'s status; after it, an `event: error` the SDK throws', async () => {
    spark.plan = { errorCode: 10013 };
    const before = await alice.messages.create({ model: 'spark-max', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] }).catch((caught: unknown) => caught);
    expect(before).toBeInstanceOf(APIError);
    expect((before as APIError).error).toMatchObject({ type: 'error', error: { type: expect.any(String) as string, message: expect.any(String) as string } });

    spark.plan = { dropAfterFirst: true };
    const stream = alice.messages.stream({ model: 'spark-max', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] });
    const texts: string[] = [];
    stream.on('text', (text) => texts.push(text));
    const after = await stream.finalMessage().catch((caught: unknown) => caught);
    expect(texts.join('')).toBe('答复');
    expect(after).toBeInstanceOf(APIError);
    expect((after as APIError).message).toContain('upstream_stream_interrupted');
  });

  it('is framed as Anthropic sends it: event and data lines of the same type, `ping` events as heartbeats', async () => {
    openai.plan = { chunkCount: 6, delayMs: 60 };
    const response = await fetch(`${gateway.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': aliceKey, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'gpt-test', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const blocks = (await response.text()).split('\n\n').filter((block) => block !== '');
    const names: string[] = [];
    for (const block of blocks) {
      const [eventLine, dataLine, ...rest] = block.split('\n');
      expect(rest).toEqual([]);
      const name = /^event: ([a-z_]+)$/.exec(eventLine ?? '')?.[1];
      expect(name).toBeDefined();
      expect((JSON.parse((dataLine ?? '').replace(/^data: /, '')) as { type: string }).type).toBe(name);
      names.push(name ?? '');
    }
    expect(names.filter((name) => name === 'ping').length).toBeGreaterThan(0);
    expect(names.filter((name) => name !== 'ping').at(-1)).toBe('message_stop');
  });
});

describe('count_tokens', () => {
  it('answers an estimate, and says so in a field and a header', async () => {
    const counted = await alice.messages.countTokens({ model: 'gpt-test', system: 'Be brief.', tools: [weatherTool], messages: [{ role: 'user', content: 'What is the weather in Beijing today?' }] });
    expect(counted.input_tokens).toBeGreaterThan(10);
    expect((counted as unknown as { estimated: boolean }).estimated).toBe(true);
    const raw = await fetch(`${gateway.url}/v1/messages/count_tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': aliceKey },
      body: JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'Hi' }] }),
    });
    expect(raw.headers.get('sluice-token-count')).toBe('estimated');
    // No upstream is asked.
    expect(openai.requests).toHaveLength(0);
  });

  it('refuses an unknown model and a bad body, Anthropic-style', async () => {
    const unknown = await alice.messages.countTokens({ model: 'nope', messages: [{ role: 'user', content: 'Hi' }] }).catch((caught: unknown) => caught);
    expect(unknown).toBeInstanceOf(NotFoundError);
    const empty = await alice.messages.countTokens({ model: 'gpt-test', messages: [] }).catch((caught: unknown) => caught);
    expect((empty as BadRequestError).message).toContain('messages');
  });
});

describe('cancellation', () => {
  it('a client that leaves cancels the upstream request within a second, and the row says cancelled', async () => {
    openai.plan = { chunkCount: 100, delayMs: 50 };
    const controller = new AbortController();
    const response = await fetch(`${gateway.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': aliceKey },
      body: JSON.stringify({ model: 'gpt-test', max_tokens: 500, stream: true, messages: [{ role: 'user', content: 'Long answer please' }] }),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    await reader.read();
    const abortedAt = performance.now();
    controller.abort();
    const closedAt = await within(openai.requests[0]!.closed, 2_000, 'the upstream request to close');
    expect(closedAt - abortedAt).toBeLessThan(cancelWithinMs);
    await waitFor(() => gateway.app.generations.active.size === 0, 'the generation to end');
    await gateway.app.generations.flushUsage();
    const [row] = await gateway.app.store.usage.recent({ limit: 1, userId: 'alice' });
    expect(row).toMatchObject({ route: 'messages', outcome: 'cancelled' });
  });
});

describe('docs/messages.md', () => {
  const repository = new URL('..', import.meta.url).pathname;
  let demo: TestGateway;
  let key: string;
  let directory: string;
  beforeAll(async () => {
    demo = await startGateway({ auth: { mode: 'keys' }, providers: { demo: { type: 'mock', chunkCount: 20, delayMs: 20 } }, models: { 'sluice-demo': { provider: 'demo' } } });
    key = (await demo.app.keys.create({ userId: 'doc-reader', role: 'user' })).key;
    // Inside the repository, so `import '@anthropic-ai/sdk'` resolves from its node_modules.
    mkdirSync(join(repository, 'node_modules/.cache'), { recursive: true });
    directory = mkdtempSync(join(repository, 'node_modules/.cache/sluice-messages-doc-'));
  });
  afterAll(async () => {
    rmSync(directory, { recursive: true, force: true });
    await demo?.close();
  });

  it('messages-node: the example runs as written: streams, answers once, counts tokens', async () => {
    const markdown = readFileSync(join(repository, 'docs/messages.md'), 'utf8');
    const blocks = [...markdown.matchAll(/<!-- test: messages-node -->\s*\n```js\n([\s\S]*?)\n```/g)];
    expect(blocks).toHaveLength(1);
    const file = join(directory, 'messages.mjs');
    writeFileSync(file, `${blocks[0]?.[1] ?? ''}\n`);
    const result = await runProcess(process.execPath, [file], { env: { SLUICE_URL: demo.url, SLUICE_KEY: key }, timeoutMs: 20_000 });
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe(demoAnswer('Hello!'));
    expect(lines[1]).toMatch(/^\[end_turn, \d+ output tokens\]$/);
    expect(lines[2]).toBe(demoAnswer('And again?'));
    expect(lines[3]).toMatch(/^\[about \d+ input tokens\]$/);
    // The first answer was printed as it arrived, not at the end.
    expect(result.stdoutArrivals.length).toBeGreaterThan(5);
  });
});
