// The Responses API end to end, with the official `openai` package as the client over real
// sockets, against the mock OpenAI upstream and the mock Anthropic one (any provider serves it):
// streamed and not, instructions and input items, a function call round trip through
// previous_response_id, storage (store: false, GET, DELETE, owner only), background responses
// that outlive their client, resume after a sequence number on one upstream call and can be
// cancelled, errors before and after the first byte, a usage row, a client that leaves
// cancelling the upstream within a second, and the example of docs/responses.md run as written.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI, { BadRequestError, NotFoundError } from 'openai';
import type { Response as OpenAiResponse, ResponseStreamEvent } from 'openai/resources/responses/responses';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockOpenAi, defaultAnswer, splitText, type MockOpenAi } from './support/mock-openai.js';
import { startMockAnthropic, type MockAnthropic } from './support/mock-anthropic.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { cancelWithinMs, waitFor, within } from './support/wait.js';
import { runProcess } from './support/guides.js';
import { demoAnswer } from '../src/providers/mock/answer.js';

let openai: MockOpenAi;
let anthropic: MockAnthropic;
let gateway: TestGateway;
/** Alice's client (a user key), Bob's, and an admin's. */
let alice: OpenAI;
let bob: OpenAI;
let admin: OpenAI;
let aliceKey: string;

function gatewayConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    auth: { mode: 'keys' },
    server: { heartbeatMs: 40 },
    providers: {
      upstream: { type: 'openai', baseUrl: openai.baseUrl, apiKey: openai.apiKey },
      claude: { type: 'anthropic', baseUrl: anthropic.baseUrl, apiKey: anthropic.apiKey, maxTokens: 1000 },
    },
    models: { 'gpt-test': { provider: 'upstream', model: 'gpt-4o-mini' }, sonnet: { provider: 'claude', model: 'claude-sonnet-4-5' } },
    ...extra,
  };
}

async function clientFor(target: TestGateway, userId: string, role: 'user' | 'admin'): Promise<{ client: OpenAI; key: string }> {
  const { key } = await target.app.keys.create({ userId, role });
  return { client: new OpenAI({ baseURL: `${target.url}/v1`, apiKey: key, maxRetries: 0, timeout: 10_000 }), key };
}

beforeAll(async () => {
  openai = await startMockOpenAi();
  anthropic = await startMockAnthropic();
  gateway = await startGateway(gatewayConfig());
  ({ client: alice, key: aliceKey } = await clientFor(gateway, 'alice', 'user'));
  ({ client: bob } = await clientFor(gateway, 'bob', 'user'));
  ({ client: admin } = await clientFor(gateway, 'root', 'admin'));
});
afterAll(async () => {
  await gateway?.close();
  await openai?.close();
  await anthropic?.close();
});
beforeEach(() => {
  openai.reset();
  anthropic.reset();
});

/** The text of a response's message items (the SDK fills `output_text` only in non-streamed answers). */
function textOf(response: Pick<OpenAiResponse, 'output'>): string {
  return response.output.flatMap((item) => (item.type === 'message' ? item.content : [])).map((part) => (part.type === 'output_text' ? part.text : '')).join('');
}

async function collect(stream: AsyncIterable<ResponseStreamEvent>): Promise<ResponseStreamEvent[]> {
  const events: ResponseStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

function deltasOf(events: readonly ResponseStreamEvent[]): string {
  return events.map((event) => (event.type === 'response.output_text.delta' ? event.delta : '')).join('');
}

function expectNumbered(events: readonly ResponseStreamEvent[], from = 0): void {
  expect(events.map((event) => event.sequence_number)).toEqual(events.map((_, index) => from + index));
}

function lastResponse(events: readonly ResponseStreamEvent[]): OpenAiResponse {
  const last = events.at(-1);
  if (!last || !('response' in last)) throw new Error(`the stream did not end with a response event: ${JSON.stringify(last)}`);
  return last.response;
}

describe('streamed', () => {
  it('responses.create({stream: true}): the event sequence, numbered from 0, the exact text and the usage', async () => {
    openai.plan = { chunkCount: 12, usage: { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 } };
    const events = await collect(await alice.responses.create({ model: 'gpt-test', input: 'Hi there', stream: true }));
    expectNumbered(events);
    const types = events.map((event) => event.type);
    expect(types.slice(0, 4)).toEqual(['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    expect(types.slice(-4)).toEqual(['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
    expect(types.filter((type) => type === 'response.output_text.delta')).toHaveLength(splitText(defaultAnswer, 12).length);
    expect(deltasOf(events)).toBe(defaultAnswer);
    const completed = lastResponse(events);
    expect(completed).toMatchObject({ object: 'response', status: 'completed', model: 'gpt-test', error: null, store: true, background: false });
    expect(textOf(completed)).toBe(defaultAnswer);
    expect(completed.usage).toEqual({ input_tokens: 9, input_tokens_details: { cached_tokens: 0 }, output_tokens: 12, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 21 });
    expect(completed.id).toMatch(/^resp_/);
    // The upstream got a chat completions stream of the one user message.
    expect(openai.requests).toHaveLength(1);
    expect(openai.requests[0]?.body).toMatchObject({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Hi there' }] });
  });

  it('responses.stream() on another provider (Anthropic): finalResponse() has the text and the usage, instructions as its system prompt', async () => {
    const stream = alice.responses.stream({ model: 'sonnet', instructions: 'Be brief.', input: 'Hi' });
    const deltas: string[] = [];
    stream.on('response.output_text.delta', (event) => deltas.push(event.delta));
    const response = await stream.finalResponse();
    expect(deltas.join('')).toBe('Hello from Claude 你好 🙂');
    expect(textOf(response)).toBe('Hello from Claude 你好 🙂');
    expect(response.status).toBe('completed');
    expect(response.instructions).toBe('Be brief.');
    expect(response.usage).toMatchObject({ input_tokens: 12, output_tokens: 34, total_tokens: 46 });
    expect(anthropic.requests[0]?.body).toMatchObject({ model: 'claude-sonnet-4-5', system: 'Be brief.', stream: true, messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }] });
  });

  it('is framed as OpenAI sends it: event and data lines, ": ping" heartbeats, no id or retry lines', async () => {
    openai.plan = { chunkCount: 6, delayMs: 60 };
    const response = await fetch(`${gateway.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${aliceKey}` },
      body: JSON.stringify({ model: 'gpt-test', input: 'Hi', stream: true }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const lines = (await response.text()).split('\n');
    expect(lines.filter((line) => line === ': ping').length).toBeGreaterThan(0);
    for (const line of lines) expect(line === '' || line === ': ping' || /^event: response\.[a-z_.]+$/.test(line) || line.startsWith('data: {')).toBe(true);
  });

  it('a client that leaves cancels the upstream request within a second, and the response is stored as cancelled', async () => {
    openai.plan = { chunkCount: 100, delayMs: 50 };
    const controller = new AbortController();
    const response = await fetch(`${gateway.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${aliceKey}` },
      body: JSON.stringify({ model: 'gpt-test', input: 'Hi', stream: true }),
      signal: controller.signal,
    });
    const reader: ReadableStreamDefaultReader<Uint8Array> = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('response.output_text.delta')) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended before any text');
      text += decoder.decode(value, { stream: true });
    }
    const id = /"id":"(resp_[^"]+)"/.exec(text)?.[1] ?? '';
    const abortedAt = performance.now();
    controller.abort();
    const closedAt = await within(openai.requests[0]!.closed, 2000, 'the upstream request to close');
    expect(closedAt - abortedAt).toBeLessThan(cancelWithinMs);
    await waitFor(() => gateway.app.generations.active.size === 0, 'no active generation');
    const stored = await alice.responses.retrieve(id);
    expect(stored.status).toBe('cancelled');
    expect(stored.error?.code).toBe('cancelled');
  });
});

describe('not streamed', () => {
  it('answers one response object with output_text, asking the upstream for one completion', async () => {
    const response = await alice.responses.create({ model: 'gpt-test', input: 'Hi' });
    expect(response.output_text).toBe(defaultAnswer);
    expect(response.status).toBe('completed');
    expect(response.output).toHaveLength(1);
    expect(response.output[0]).toMatchObject({ type: 'message', role: 'assistant', status: 'completed' });
    expect(typeof response.completed_at).toBe('number');
    expect(openai.requests[0]?.body['stream']).toBe(false);
  });

  it('sends instructions, input items, tools and sampling fields to the upstream in the chat format', async () => {
    await alice.responses.create({
      model: 'gpt-test',
      instructions: 'Answer in French.',
      input: [
        { role: 'developer', content: 'Use metric units.' },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'First part.' }, { type: 'input_text', text: 'Second part.' }] },
        { type: 'message', id: 'msg_earlier', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Earlier answer.', annotations: [] }] },
        { role: 'user', content: 'And now?' },
      ],
      tools: [{ type: 'function', name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false }],
      tool_choice: { type: 'function', name: 'get_weather' },
      parallel_tool_calls: false,
      temperature: 0.3,
      top_p: 0.9,
      max_output_tokens: 200,
      metadata: { ticket: 'T-42' },
    });
    expect(openai.requests[0]?.body).toMatchObject({
      messages: [
        { role: 'system', content: 'Answer in French.' },
        { role: 'developer', content: 'Use metric units.' },
        { role: 'user', content: [{ type: 'text', text: 'First part.' }, { type: 'text', text: 'Second part.' }] },
        { role: 'assistant', content: 'Earlier answer.' },
        { role: 'user', content: 'And now?' },
      ],
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
      temperature: 0.3,
      top_p: 0.9,
      max_tokens: 200,
    });
    expect(openai.requests[0]?.body).not.toHaveProperty('metadata');
  });

  it('refuses what it cannot serve with a 400 naming the field', async () => {
    const refused = async (body: Record<string, unknown>): Promise<BadRequestError> => {
      const error = await alice.responses.create(body as never).catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(BadRequestError);
      return error as BadRequestError;
    };
    expect((await refused({ model: 'gpt-test', input: 'Hi', tools: [{ type: 'web_search' }] })).param).toBe('tools[0].type');
    expect((await refused({ model: 'gpt-test', input: [{ type: 'item_reference', id: 'x' }] })).param).toBe('input[0].type');
    expect((await refused({ model: 'gpt-test', input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x' }] }] })).param).toBe('input[0].content[0].type');
    expect((await refused({ model: 'gpt-test', input: [{ type: 'function_call_output', output: 'x' }] })).param).toBe('input[0].call_id');
    expect((await refused({ model: 'gpt-test', input: 'Hi', background: true, store: false })).param).toBe('background');
    expect((await refused({ model: 'gpt-test' })).param).toBe('input');
    expect(openai.requests).toHaveLength(0);
  });
});

describe('function calls', () => {
  it('round trip on Anthropic: function_call out, function_call_output in through previous_response_id', async () => {
    anthropic.plan = { toolUse: { id: 'toolu_01A', name: 'get_weather', jsonPieces: ['{"city":', '"Paris"}'] } };
    const tools = [{ type: 'function' as const, name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: false }];
    const events = await collect(await alice.responses.create({ model: 'sonnet', input: 'Weather in Paris?', tools, stream: true }));
    expectNumbered(events);
    const types = events.map((event) => event.type);
    expect(types).toContain('response.function_call_arguments.delta');
    expect(types.slice(-4)).toEqual(['response.function_call_arguments.delta', 'response.function_call_arguments.done', 'response.output_item.done', 'response.completed']);
    const first = lastResponse(events);
    expect(first.output.map((item) => item.type)).toEqual(['message', 'function_call']);
    const call = first.output[1];
    if (call?.type !== 'function_call') throw new Error('no function call');
    expect(call).toMatchObject({ call_id: 'toolu_01A', name: 'get_weather', arguments: '{"city":"Paris"}', status: 'completed' });

    anthropic.plan = { pieces: ['It is sunny in Paris.'] };
    const second = await alice.responses.create({ model: 'sonnet', previous_response_id: first.id, input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"sky":"clear"}' }], tools });
    expect(second.output_text).toBe('It is sunny in Paris.');
    expect(second.previous_response_id).toBe(first.id);
    // The provider saw the whole exchange: the question, the call with its text, the result.
    expect(anthropic.requests[1]?.body['messages']).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'Hello from Claude 你好 🙂' }, { type: 'tool_use', id: 'toolu_01A', name: 'get_weather', input: { city: 'Paris' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01A', content: '{"sky":"clear"}' }] },
    ]);
    expect(anthropic.requests[1]?.body['tools']).toEqual([{ name: 'get_weather', description: 'Weather in a city', input_schema: tools[0]!.parameters }]);
  });
});

describe('storage', () => {
  it('GET returns the stored response; DELETE removes it, answering {id, object: "response.deleted", deleted: true}; then both are 404', async () => {
    const created = await alice.responses.create({ model: 'gpt-test', input: 'Hi', metadata: { topic: 'greeting' } });
    const stored = await alice.responses.retrieve(created.id);
    expect(stored).toEqual(created);
    expect(stored.metadata).toEqual({ topic: 'greeting' });
    expect(await alice.responses.delete(created.id)).toEqual({ id: created.id, object: 'response.deleted', deleted: true });
    await expect(alice.responses.retrieve(created.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(alice.responses.delete(created.id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('a streamed response is stored with its output by the time the stream has ended', async () => {
    const events = await collect(await alice.responses.create({ model: 'gpt-test', input: 'Hi', stream: true }));
    const completed = lastResponse(events);
    const stored = await alice.responses.retrieve(completed.id);
    expect(stored.status).toBe('completed');
    expect(stored.output).toEqual(completed.output);
    expect(stored.usage).toEqual(completed.usage);
  });

  it('store: false keeps nothing: GET is 404 and it cannot be continued', async () => {
    const created = await alice.responses.create({ model: 'gpt-test', input: 'Hi', store: false });
    expect(created.output_text).toBe(defaultAnswer);
    expect(created).toMatchObject({ store: false });
    await expect(alice.responses.retrieve(created.id)).rejects.toBeInstanceOf(NotFoundError);
    const error = await alice.responses.create({ model: 'gpt-test', input: 'More', previous_response_id: created.id }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).param).toBe('previous_response_id');
    expect((error as NotFoundError).code).toBe('response_not_found');
  });

  it('belongs to its owner: another user gets 404 for GET, DELETE, cancel and previous_response_id; an admin may read it', async () => {
    const created = await alice.responses.create({ model: 'gpt-test', input: 'Secret' });
    await expect(bob.responses.retrieve(created.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(bob.responses.delete(created.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(bob.responses.cancel(created.id)).rejects.toBeInstanceOf(NotFoundError);
    const continued = await bob.responses.create({ model: 'gpt-test', input: 'More', previous_response_id: created.id }).catch((thrown: unknown) => thrown);
    expect(continued).toBeInstanceOf(NotFoundError);
    expect((continued as NotFoundError).param).toBe('previous_response_id');
    expect((await admin.responses.retrieve(created.id)).id).toBe(created.id);
    expect((await alice.responses.retrieve(created.id)).id).toBe(created.id);
  });

  it('writes one usage row with route "responses"', async () => {
    openai.plan = { usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } };
    const created = await alice.responses.create({ model: 'gpt-test', input: 'Count me' });
    await gateway.app.generations.flushUsage();
    const [row] = await gateway.app.store.usage.recent({ limit: 1, userId: 'alice' });
    expect(row).toMatchObject({ route: 'responses', model: 'gpt-test', provider: 'upstream', totalTokens: 7, outcome: 'completed', generationId: created.id.replace(/^resp_/, '') });
  });
});

describe('errors', () => {
  it('before the first byte: the SDK throws its typed error with the status and code', async () => {
    const error = await alice.responses.create({ model: 'no-such-model', input: 'Hi', stream: true }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).code).toBe('model_not_found');
  });

  it('after the first byte: response.failed with status failed and the error, also in the stored response', async () => {
    openai.handlers.push((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = { id: 'chatcmpl-x', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { role: 'assistant', content: 'Partial ' }, logprobs: null, finish_reason: null }] };
      response.write(`data: ${JSON.stringify(chunk)}\n\n`);
      setTimeout(() => response.end(`data: ${JSON.stringify({ error: { message: 'The server had an error.', type: 'server_error', param: null, code: null } })}\n\n`), 30);
      return true;
    });
    const events = await collect(await alice.responses.create({ model: 'gpt-test', input: 'Hi', stream: true }));
    expectNumbered(events);
    expect(events.at(-1)?.type).toBe('response.failed');
    const failed = lastResponse(events);
    expect(failed.status).toBe('failed');
    expect(failed.error?.message).toContain('The server had an error.');
    expect(typeof failed.error?.code).toBe('string');
    expect(textOf(failed)).toBe('Partial ');
    expect((await alice.responses.retrieve(failed.id)).status).toBe('failed');
  });
});

describe('background', () => {
  it('answers at once (queued), keeps running without its client, and GET shows it completed', async () => {
    openai.plan = { chunkCount: 10, delayMs: 20 };
    const queued = await alice.responses.create({ model: 'gpt-test', input: 'Hi', background: true });
    expect(queued.status).toBe('queued');
    expect(queued.background).toBe(true);
    let current = await alice.responses.retrieve(queued.id);
    expect(['queued', 'in_progress']).toContain(current.status);
    await waitFor(() => gateway.app.generations.active.size === 0, 'the background response to finish', 5000);
    current = await alice.responses.retrieve(queued.id);
    expect(current.status).toBe('completed');
    expect(current.output_text).toBe(defaultAnswer);
    expect(openai.requests).toHaveLength(1);
  });

  it('cancel stops it: the upstream request closes and the response says cancelled', async () => {
    openai.plan = { chunkCount: 100, delayMs: 50 };
    const queued = await alice.responses.create({ model: 'gpt-test', input: 'Hi', background: true });
    await waitFor(() => openai.requests.length === 1, 'the upstream request');
    const cancelledAt = performance.now();
    const cancelled = await alice.responses.cancel(queued.id);
    expect(cancelled.status).toBe('cancelled');
    const closedAt = await within(openai.requests[0]!.closed, 2000, 'the upstream request to close');
    expect(closedAt - cancelledAt).toBeLessThan(1000);
    expect((await alice.responses.retrieve(queued.id)).status).toBe('cancelled');
    // Cancelling what has finished changes nothing.
    expect((await alice.responses.cancel(queued.id)).status).toBe('cancelled');
  });

  it('a response that is not background cannot be cancelled', async () => {
    const created = await alice.responses.create({ model: 'gpt-test', input: 'Hi' });
    await expect(alice.responses.cancel(created.id)).rejects.toBeInstanceOf(BadRequestError);
  });

  it('resumes after starting_after with exactly the remaining events, from one upstream call, and replays whole the same', async () => {
    openai.plan = { chunkCount: 30, delayMs: 25 };
    const stream = await alice.responses.create({ model: 'gpt-test', input: 'Hi', background: true, stream: true });
    const firstPart: ResponseStreamEvent[] = [];
    for await (const event of stream) {
      firstPart.push(event);
      if (firstPart.length === 8) break; // the SDK drops the connection
    }
    const id = (firstPart[0] as { response: { id: string } }).response.id;
    const lastSeen = firstPart.at(-1)!.sequence_number;
    // Leaving did not cancel it: the upstream answer goes on.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(gateway.app.generations.active.size).toBe(1);

    const rest = await collect(await alice.responses.retrieve(id, { stream: true, starting_after: lastSeen }));
    const joined = [...firstPart, ...rest];
    expectNumbered(joined);
    expect(rest[0]?.sequence_number).toBe(lastSeen + 1);
    expect(joined.at(-1)?.type).toBe('response.completed');
    expect(deltasOf(joined)).toBe(defaultAnswer);
    expect(openai.requests).toHaveLength(1);

    // Replayed from the start (the SDK's responses.stream({response_id}) asks for that), the same events.
    expect(await collect(await alice.responses.retrieve(id, { stream: true }))).toEqual(joined);
    const resumed = alice.responses.stream({ response_id: id, starting_after: lastSeen });
    const emitted: number[] = [];
    resumed.on('event', (event) => emitted.push(event.sequence_number));
    expect(textOf(await resumed.finalResponse())).toBe(defaultAnswer);
    expect(emitted).toEqual(rest.map((event) => event.sequence_number));
    expect(openai.requests).toHaveLength(1);
  });

  it('only a background response can be streamed again', async () => {
    const created = await alice.responses.create({ model: 'gpt-test', input: 'Hi' });
    const error = await alice.responses.retrieve(created.id, { stream: true }).then(collect).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).param).toBe('stream');
  });
});

describe('background past the registry retention', () => {
  let shortLived: TestGateway;
  let client: OpenAI;
  beforeAll(async () => {
    shortLived = await startGateway(gatewayConfig({ generations: { retentionMs: 50 } }));
    ({ client } = await clientFor(shortLived, 'carol', 'user'));
  });
  afterAll(async () => {
    await shortLived?.close();
  });

  it('replays the stored event log: the same events after starting_after, and no second upstream call', async () => {
    openai.plan = { chunkCount: 6, delayMs: 5 };
    const live = await collect(await client.responses.create({ model: 'gpt-test', input: 'Hi', background: true, stream: true }));
    const id = lastResponse(live).id;
    await new Promise((resolve) => setTimeout(resolve, 200));
    const replayed = await collect(await client.responses.retrieve(id, { stream: true, starting_after: 3 }));
    expect(replayed).toEqual(live.slice(4));
    expect(openai.requests).toHaveLength(1);
  });
});

describe('docs/responses.md', () => {
  const repository = new URL('..', import.meta.url).pathname;
  let demo: TestGateway;
  let key: string;
  let directory: string;
  beforeAll(async () => {
    demo = await startGateway({ auth: { mode: 'keys' }, providers: { demo: { type: 'mock', chunkCount: 20, delayMs: 20 } }, models: { 'sluice-demo': { provider: 'demo' } }, defaultModel: 'sluice-demo' });
    key = (await demo.app.keys.create({ userId: 'doc-reader', role: 'user' })).key;
    // Inside the repository, so `import 'openai'` resolves from its node_modules.
    mkdirSync(join(repository, 'node_modules/.cache'), { recursive: true });
    directory = mkdtempSync(join(repository, 'node_modules/.cache/sluice-responses-doc-'));
  });
  afterAll(async () => {
    rmSync(directory, { recursive: true, force: true });
    await demo?.close();
  });

  it('responses-node: the example runs as written: streams, continues, and resumes a background response', async () => {
    const markdown = readFileSync(join(repository, 'docs/responses.md'), 'utf8');
    const blocks = [...markdown.matchAll(/<!-- test: responses-node -->\s*\n```js\n([\s\S]*?)\n```/g)];
    expect(blocks).toHaveLength(1);
    const file = join(directory, 'responses.mjs');
    writeFileSync(file, `${blocks[0]?.[1] ?? ''}\n`);
    const result = await runProcess(process.execPath, [file], { env: { SLUICE_URL: demo.url, SLUICE_KEY: key }, timeoutMs: 20_000 });
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe(demoAnswer('Hello!'));
    expect(lines[1]).toMatch(/^\[completed, \d+ tokens\]$/);
    expect(lines[2]).toBe(demoAnswer('And again?'));
    expect(lines[3]).toBe('[background completed]');
    // The first answer was printed as it arrived, not at the end.
    expect(result.stdoutArrivals.length).toBeGreaterThan(5);
  });
});
