// The native streaming API as front ends use it: SSE and JSON chat, EventSource with a ticket, a
// dropped stream resumed at every position of a 200-delta answer giving exactly the full text, a
// second subscriber, cancel, the resume grace period cancelling the upstream, 204 at the end,
// 404 after retention, owners only, conversations that carry their history, and a finished
// generation read back exactly after its log was packed.
import { EventSource } from 'eventsource';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockOpenAi, type MockOpenAi } from './support/mock-openai.js';
import { openAiConfig, startGateway, type TestGateway } from './support/gateway.js';
import { attachNative, generationIdOf, nativeHeaders, postNativeChat, readNative } from './support/native-client.js';
import { waitFor, within } from './support/wait.js';
import { createMemoryGenerationRegistry, type GenerationRegistry } from '../src/relay/generation-registry.js';
import type { Generation } from '../src/relay/generation.js';

/** 200 pieces, multi-byte characters in every one, so a lost or repeated piece always shows. */
const pieces = Array.from({ length: 200 }, (_, index) => `${index.toString()}·你好🙂 `);
const fullText = pieces.join('');

let upstream: MockOpenAi;
let gateway: TestGateway;
let aliceKey: string;
let bobKey: string;
/** The generations the gateway keeps, by id: the registry it uses, watched. */
const kept = new Map<string, Generation>();

beforeAll(async () => {
  upstream = await startMockOpenAi();
  gateway = await startGateway(
    openAiConfig(upstream.baseUrl, upstream.apiKey, {
      auth: { mode: 'keys' },
      defaultModel: 'gpt-test',
      // Retention long enough for the 200-resume test on a loaded machine; the retention test has its own gateway.
      generations: { resumeGraceMs: 300, retentionMs: 60_000 },
    }),
    {},
    { registry: watchedRegistry(createMemoryGenerationRegistry({ retentionMs: 60_000 })) },
  );
  aliceKey = (await gateway.app.keys.create({ userId: 'alice', role: 'user' })).key;
  bobKey = (await gateway.app.keys.create({ userId: 'bob', role: 'user' })).key;
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});
/** `registry`, with every generation it tracks kept in `kept`. */
function watchedRegistry(registry: GenerationRegistry): GenerationRegistry {
  return {
    ...registry,
    track(generation, info) {
      kept.set(info.id, generation);
      registry.track(generation, info);
    },
  };
}

beforeEach(() => {
  upstream.reset();
  upstream.plan = { pieces, usage: { prompt_tokens: 7, completion_tokens: 200, total_tokens: 207 } };
});

describe('POST /api/chat', () => {
  it('streams meta, deltas, usage and done, each with an id <generationId>:<seq>', async () => {
    const read = await postNativeChat(gateway.url, { message: 'hello' }, { key: aliceKey });
    expect(read.status).toBe(200);
    expect(read.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(read.text).toBe(fullText);
    const generationId = generationIdOf(read);
    expect(read.headers.get('x-sluice-generation-id')).toBe(generationId);
    expect(read.events[0]).toEqual({ event: 'meta', id: `${generationId}:0`, data: { generationId, model: 'gpt-test', userId: 'alice' } });
    expect(read.events.at(-2)).toMatchObject({ event: 'usage', data: { promptTokens: 7, completionTokens: 200, totalTokens: 207, estimated: false } });
    expect(read.events.at(-1)).toMatchObject({ event: 'done', data: { finishReason: 'stop' } });
    const seqs = read.events.map((event) => Number(event.id?.split(':')[1]));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    for (const event of read.events) expect(event.id).toMatch(/^[A-Za-z0-9_-]{1,64}:\d+$/);
    // The provider was asked once, with the message.
    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0]?.body['messages']).toEqual([{ role: 'user', content: 'hello' }]);
  });

  it('answers with one JSON object without Accept: text/event-stream', async () => {
    const response = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${aliceKey}` }, body: JSON.stringify({ message: 'hello', system: 'be brief' }) });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ model: 'gpt-test', userId: 'alice', text: fullText, finishReason: 'stop', usage: { totalTokens: 207, estimated: false } });
    expect(typeof body['generationId']).toBe('string');
    expect(upstream.requests[0]?.body['messages']).toEqual([{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }]);
  });

  it('bad input names the field and reaches no provider', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{}, 'message'],
      [{ message: 'a', messages: [{ role: 'user', content: 'b' }] }, 'message'],
      [{ message: '' }, 'message'],
      [{ message: 'a', conversationId: 'has spaces' }, 'conversationId'],
      [{ messages: [{ role: 'user', content: 'b' }], conversationId: 'c1' }, 'messages'],
      [{ messages: [{ role: 'wizard', content: 'b' }] }, 'messages[0].role'],
      [{ message: 'a', colour: 'red' }, 'colour'],
    ];
    for (const [body, param] of cases) {
      const response = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: nativeHeaders(aliceKey), body: JSON.stringify(body) });
      const error = (await response.json()) as { error: { param: string } };
      expect({ body, status: response.status, param: error.error.param }).toEqual({ body, status: 400, param });
    }
    const badId = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: nativeHeaders(aliceKey, { 'last-event-id': 'not an id' }), body: '{}' });
    expect(badId.status).toBe(400);
    expect(((await badId.json()) as { error: { param: string } }).error.param).toBe('Last-Event-ID');
    expect(upstream.requests).toHaveLength(0);
  });

  it('with Last-Event-ID (fetch-event-source re-sending its POST) resumes the generation and never starts a second one', async () => {
    upstream.plan = { ...upstream.plan, delayMs: 2 };
    const first = await postNativeChat(gateway.url, { message: 'hello' }, { key: aliceKey, stopAfterDeltas: 50 });
    const again = await postNativeChat(gateway.url, { message: 'hello' }, { key: aliceKey, headers: { 'last-event-id': first.lastEventId ?? '' } });
    expect(first.text + again.text).toBe(fullText);
    expect(again.events.some((event) => event.event === 'meta')).toBe(false);
    expect(upstream.requests).toHaveLength(1);
  });
});

describe('resuming a dropped stream', () => {
  it('at every position of a 200-delta answer gives exactly the full text', async () => {
    const whole = await postNativeChat(gateway.url, { message: 'hello' }, { key: aliceKey });
    const generationId = generationIdOf(whole);
    const ids = whole.events.map((event) => event.id ?? '');
    const deltaTexts = whole.events.map((event) => (event.event === 'delta' ? String(event.data['text']) : ''));
    for (let position = 0; position < ids.length - 1; position++) {
      const seen = deltaTexts.slice(0, position + 1).join('');
      const rest = await attachNative(gateway.url, generationId, { key: aliceKey, lastEventId: ids[position] ?? '' });
      expect(rest.status).toBe(200);
      expect(seen + rest.text).toBe(fullText);
      expect(rest.events[0]?.id).toBe(ids[position + 1]);
    }
    // Past the last event of a finished generation: 204, so EventSource stops.
    expect((await attachNative(gateway.url, generationId, { key: aliceKey, lastEventId: ids.at(-1) ?? '' })).status).toBe(204);
    expect(upstream.requests).toHaveLength(1);
  });

  it('after its log was packed (a second after it finished): every event comes back as it was, with its id', async () => {
    const whole = await postNativeChat(gateway.url, { message: 'hello' }, { key: aliceKey });
    const generationId = generationIdOf(whole);
    const generation = kept.get(generationId);
    await waitFor(() => generation?.packed === true, 'the finished generation\'s log to be packed', 5000);
    const ids = whole.events.map((event) => event.id ?? '');
    for (const position of [0, 1, 2, 57, 123, ids.length - 3, ids.length - 2]) {
      const rest = await attachNative(gateway.url, generationId, { key: aliceKey, lastEventId: ids[position] ?? '' });
      expect(rest.status).toBe(200);
      expect(rest.events).toEqual(whole.events.slice(position + 1));
    }
    // Read, it was unpacked; left alone, it is packed again, and still ends where it ended.
    expect(generation?.packed).toBe(false);
    await waitFor(() => generation?.packed === true, 'the log to be packed again', 5000);
    expect((await attachNative(gateway.url, generationId, { key: aliceKey, lastEventId: ids.at(-1) ?? '' })).status).toBe(204);
    // After the meta event (seq 0): the whole text.
    const rest = await attachNative(gateway.url, generationId, { key: aliceKey, lastEventId: ids[0] ?? '' });
    expect(rest.text).toBe(fullText);
    expect(upstream.requests).toHaveLength(1);
  });

  it('while it is still running: drops at random points, each resume continues live, and the text is exact', async () => {
    upstream.plan = { ...upstream.plan, delayMs: 3 };
    let read = await postNativeChat(gateway.url, { message: 'hello' }, { key: aliceKey, stopAfterDeltas: 1 + Math.floor(Math.random() * 30) });
    const generationId = generationIdOf(read);
    let text = read.text;
    let drops = 1;
    while (read.events.at(-1)?.event !== 'done') {
      read = await attachNative(gateway.url, generationId, { key: aliceKey, lastEventId: read.lastEventId ?? '', stopAfterDeltas: 1 + Math.floor(Math.random() * 40) });
      expect(read.status).toBe(200);
      text += read.text;
      if (read.events.at(-1)?.event !== 'done') drops++;
    }
    expect(text).toBe(fullText);
    expect(drops).toBeGreaterThan(1);
    expect(upstream.requests).toHaveLength(1);
  });

  it('a second subscriber on the same generation sees the same events', async () => {
    upstream.plan = { ...upstream.plan, delayMs: 2 };
    const controller = new AbortController();
    const response = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: nativeHeaders(aliceKey), body: JSON.stringify({ message: 'hello' }), signal: controller.signal });
    const generationId = response.headers.get('x-sluice-generation-id') ?? '';
    const [first, second] = await Promise.all([readNative(response, controller), attachNative(gateway.url, generationId, { key: aliceKey })]);
    expect(first.text).toBe(fullText);
    expect(second.events).toEqual(first.events);
  });

  it('only the owner or an admin may attach; a finished generation is gone after its retention', async () => {
    const shortLived = await startGateway(openAiConfig(upstream.baseUrl, upstream.apiKey, { auth: { mode: 'keys' }, defaultModel: 'gpt-test', generations: { resumeGraceMs: 300, retentionMs: 500 } }));
    try {
      const alice = (await shortLived.app.keys.create({ userId: 'alice', role: 'user' })).key;
      const bob = (await shortLived.app.keys.create({ userId: 'bob', role: 'user' })).key;
      const admin = (await shortLived.app.keys.create({ userId: 'ops', role: 'admin' })).key;
      const whole = await postNativeChat(shortLived.url, { message: 'hello' }, { key: alice });
      const generationId = generationIdOf(whole);
      const forbidden = await fetch(`${shortLived.url}/api/generations/${generationId}/events`, { headers: nativeHeaders(bob) });
      expect(forbidden.status).toBe(403);
      expect((await attachNative(shortLived.url, generationId, { key: admin })).text).toBe(fullText);
      await new Promise((resolve) => setTimeout(resolve, 600));
      const gone = await fetch(`${shortLived.url}/api/generations/${generationId}/events`, { headers: nativeHeaders(alice) });
      expect(gone.status).toBe(404);
      expect(((await gone.json()) as { error: { code: string } }).error.code).toBe('generation_not_found');
    } finally {
      await shortLived.close();
    }
  });
});

describe('cancellation', () => {
  it('POST /api/generations/:id/cancel ends the stream with a cancelled error and closes the upstream request', async () => {
    upstream.plan = { ...upstream.plan, delayMs: 20 };
    const controller = new AbortController();
    const response = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: nativeHeaders(aliceKey), body: JSON.stringify({ message: 'hello' }), signal: controller.signal });
    const generationId = response.headers.get('x-sluice-generation-id') ?? '';
    const reading = readNative(response, controller);
    await waitFor(() => upstream.requests.length === 1, 'the upstream request');
    const cancelled = await fetch(`${gateway.url}/api/generations/${generationId}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${aliceKey}` } });
    expect(cancelled.status).toBe(200);
    expect(await cancelled.json()).toMatchObject({ generationId, cancelled: true });
    const read = await within(reading, 5000, 'the cancelled stream to end');
    expect(read.events.at(-1)).toMatchObject({ event: 'error', data: { code: 'cancelled' } });
    await within(upstream.requests[0]!.closed, 2000, 'the upstream request to close');
    // Bob may not cancel Alice's generation.
    expect((await fetch(`${gateway.url}/api/generations/${generationId}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${bobKey}` } })).status).toBe(403);
  });

  it('a client that leaves and never comes back: the upstream runs on through resumeGraceMs, then is cancelled', async () => {
    upstream.plan = { ...upstream.plan, delayMs: 20 };
    const read = await postNativeChat(gateway.url, { message: 'hello' }, { key: aliceKey, stopAfterDeltas: 2 });
    const leftAt = performance.now();
    const closedAt = await within(upstream.requests[0]!.closed, 3000, 'the upstream request to close');
    expect(closedAt - leftAt).toBeGreaterThanOrEqual(250);
    expect(closedAt - leftAt).toBeLessThan(1500);
    const rest = await attachNative(gateway.url, generationIdOf(read), { key: aliceKey, lastEventId: read.lastEventId ?? '' });
    expect(rest.events.at(-1)).toMatchObject({ event: 'error', data: { code: 'cancelled', message: expect.stringContaining('resumeGraceMs') as unknown } });
  });
});

describe('EventSource with a ticket (GET /api/chat)', () => {
  it('streams the answer, and its automatic reconnect after the end gets 204 instead of a second generation', async () => {
    upstream.plan = { ...upstream.plan, delayMs: 0 };
    const { ticket } = (await (await fetch(`${gateway.url}/api/tickets`, { method: 'POST', headers: { authorization: `Bearer ${aliceKey}` } })).json()) as { ticket: string };
    const source = new EventSource(`${gateway.url}/api/chat?message=${encodeURIComponent('hi there')}&ticket=${ticket}`);
    const requests: string[] = [];
    let text = '';
    const done = new Promise<void>((resolve, reject) => {
      source.addEventListener('delta', (event: { data: string }) => (text += (JSON.parse(event.data) as { text: string }).text));
      source.addEventListener('done', () => requests.push('done'));
      source.addEventListener('error', (event) => {
        // After `done` the server closes; EventSource reconnects with the spent ticket and
        // Last-Event-ID, gets 204, and stops for good (readyState CLOSED).
        if (source.readyState === EventSource.CLOSED) resolve();
        else if (requests.length === 0) reject(new Error(`EventSource failed: ${String((event as { message?: string }).message)}`));
      });
    });
    try {
      await within(done, 10_000, 'EventSource to finish and stop');
    } finally {
      source.close();
    }
    expect(text).toBe(fullText);
    expect(requests).toEqual(['done']);
    expect(upstream.requests).toHaveLength(1);
    // The reconnect was let in by the spent ticket's resume grant and answered 204, not 401.
    const chatLines = gateway.logs.map((line) => JSON.parse(line) as { route?: string; status?: number }).filter((line) => line.route === '/api/chat');
    expect(chatLines.slice(-2).map((line) => line.status)).toEqual([200, 204]);
  });

  it('a spent ticket opens nothing new', async () => {
    const { ticket } = (await (await fetch(`${gateway.url}/api/tickets`, { method: 'POST', headers: { authorization: `Bearer ${aliceKey}` } })).json()) as { ticket: string };
    const first = await fetch(`${gateway.url}/api/chat?message=a&ticket=${ticket}`);
    await first.text();
    const second = await fetch(`${gateway.url}/api/chat?message=a&ticket=${ticket}`);
    expect(second.status).toBe(401);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe('invalid_ticket');
    // Nor may it resume somebody else's generation.
    const other = await postNativeChat(gateway.url, { message: 'x' }, { key: aliceKey });
    const resume = await fetch(`${gateway.url}/api/chat?message=a&ticket=${ticket}`, { headers: { 'last-event-id': `${generationIdOf(other)}:3` } });
    expect(resume.status).toBe(401);
  });
});

describe('conversations', () => {
  it('carry their history to the provider, store both turns, and belong to their user', async () => {
    const conversationId = `conv-${Date.now().toString()}`;
    upstream.plan = { pieces: ['Paris', ' is the capital.'] };
    expect((await postNativeChat(gateway.url, { message: 'Capital of France?', conversationId }, { key: aliceKey })).text).toBe('Paris is the capital.');
    upstream.plan = { pieces: ['About 2.1 million.'] };
    const second = await postNativeChat(gateway.url, { message: 'Its population?', conversationId }, { key: aliceKey });
    expect(second.events[0]?.data).toMatchObject({ conversationId });
    await waitFor(() => upstream.requests.length === 2, 'two upstream requests');
    expect(upstream.requests[1]?.body['messages']).toEqual([
      { role: 'user', content: 'Capital of France?' },
      { role: 'assistant', content: 'Paris is the capital.' },
      { role: 'user', content: 'Its population?' },
    ]);

    const read = async (key: string, path: string, method = 'GET') => fetch(`${gateway.url}${path}`, { method, headers: { authorization: `Bearer ${key}` } });
    let stored: { messages: { role: string; content: string; status: string }[] } = { messages: [] };
    // The turns are stored when the answer ends, just after its last event was sent.
    for (let attempt = 0; attempt < 50 && stored.messages.length < 4; attempt++) {
      stored = (await (await read(aliceKey, `/api/conversations/${conversationId}`)).json()) as typeof stored;
      if (stored.messages.length < 4) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(stored.messages.map((message) => [message.role, message.content, message.status])).toEqual([
      ['user', 'Capital of France?', 'complete'],
      ['assistant', 'Paris is the capital.', 'complete'],
      ['user', 'Its population?', 'complete'],
      ['assistant', 'About 2.1 million.', 'complete'],
    ]);
    const list = (await (await read(aliceKey, '/api/conversations')).json()) as { data: { id: string; title: string }[] };
    expect(list.data[0]).toMatchObject({ id: conversationId, title: 'Capital of France?' });

    // Bob sees none of it, and cannot write into it either.
    expect((await read(bobKey, `/api/conversations/${conversationId}`)).status).toBe(404);
    expect(((await (await read(bobKey, '/api/conversations')).json()) as { data: unknown[] }).data).toEqual([]);
    const intrusion = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: nativeHeaders(bobKey), body: JSON.stringify({ message: 'hi', conversationId }) });
    expect(intrusion.status).toBe(404);

    expect((await read(bobKey, `/api/conversations/${conversationId}`, 'DELETE')).status).toBe(404);
    expect((await read(aliceKey, `/api/conversations/${conversationId}`, 'DELETE')).status).toBe(200);
    expect((await read(aliceKey, `/api/conversations/${conversationId}`)).status).toBe(404);
  });

  it('a cancelled answer is stored as cancelled, with what was generated', async () => {
    const conversationId = `conv-cancel-${Date.now().toString()}`;
    upstream.plan = { pieces, delayMs: 20 };
    const controller = new AbortController();
    const response = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: nativeHeaders(aliceKey), body: JSON.stringify({ message: 'long one', conversationId }), signal: controller.signal });
    const generationId = response.headers.get('x-sluice-generation-id') ?? '';
    const reading = readNative(response, controller);
    await waitFor(() => upstream.requests.length === 1, 'the upstream request');
    await new Promise((resolve) => setTimeout(resolve, 150));
    await fetch(`${gateway.url}/api/generations/${generationId}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${aliceKey}` } });
    const read = await reading;
    let stored: { messages: { role: string; content: string; status: string }[] } = { messages: [] };
    for (let attempt = 0; attempt < 50 && stored.messages.length < 2; attempt++) {
      stored = (await (await fetch(`${gateway.url}/api/conversations/${conversationId}`, { headers: { authorization: `Bearer ${aliceKey}` } })).json()) as typeof stored;
      if (stored.messages.length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(stored.messages[1]).toMatchObject({ role: 'assistant', status: 'cancelled' });
    expect(stored.messages[1]?.content.length).toBeGreaterThan(0);
    expect(fullText.startsWith(stored.messages[1]?.content ?? 'x')).toBe(true);
    expect(stored.messages[1]?.content).toBe(read.text);
  });
});
