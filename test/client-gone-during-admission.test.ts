// A client that goes away while its request is still being admitted (after its body was read,
// before the route followed its generation) still cancels the upstream call: its 'close' event
// fired before anybody listened, and the route must notice that. Streamed and not streamed on
// every chat route (OpenAI's, the native one, Responses, Messages), and a chat on a WebSocket that
// closed meanwhile; a resumable generation (native, WebSocket) goes once its resumeGraceMs is over. The admission is
// held by the limit state (as a slow Redis round trip would hold it) until the gateway has seen
// the client leave; the upstream takes 3 s to answer, longer than the test waits. Last, a hub event
// stream (GET /api/events) whose client left while its key was looked up must not stay registered.
import WebSocket from 'ws';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Store, UsageRecord } from '../src/store/store.js';
import { createStore } from '../src/store/create-store.js';
import { startMockOpenAi, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, openAiConfig, type TestGateway } from './support/gateway.js';
import { chatBody } from './support/chat-client.js';
import { createHoldingLimitState, type HoldingLimitState } from './support/held-admission.js';
import { eventually, within } from './support/wait.js';

let upstream: MockOpenAi;
let gateway: TestGateway;
let limits: HoldingLimitState;

/** Long enough for a resumable generation's grace to run out well before the answer would end. */
const resumeGraceMs = 300;

beforeAll(async () => {
  upstream = await startMockOpenAi();
  limits = createHoldingLimitState();
  gateway = await startGateway(openAiConfig(upstream.baseUrl, upstream.apiKey, { generations: { resumeGraceMs } }), {}, { limitState: limits.state });
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});
beforeEach(() => {
  upstream.reset();
  upstream.plan = { headDelayMs: 3000 }; // the upstream answers, streamed or not, 3 s after the request
});

/** The usage row of `userId`'s generation, once it ended (a refusal has no generation id). */
async function generationRow(userId: string): Promise<UsageRecord> {
  return eventually(async () => {
    await gateway.app.generations.flushUsage();
    const [row] = await gateway.app.store.usage.recent({ limit: 1, userId });
    return row?.generationId !== undefined ? row : undefined;
  }, `the usage row of ${userId}'s generation`);
}

/** The generation ended as cancelled, no upstream request is left open, none runs any more. */
async function expectCancelled(userId: string): Promise<void> {
  const row = await generationRow(userId);
  expect(row.outcome).toBe('cancelled');
  expect(row.errorCode).toBe('cancelled');
  for (const request of upstream.requests) await within(request.closed, 1000, 'the upstream request to close');
  expect(gateway.app.generations.active.size).toBe(0);
}

describe('a client that left while its request was admitted cancels the generation', () => {
  const chatCompletion = (stream: boolean) => chatBody({ model: 'gpt-test', stream });
  // The native route streams when the client accepts text/event-stream (sent on every streamed case).
  const nativeChat = () => JSON.stringify({ model: 'gpt-test', message: 'hi' });
  const response = (stream: boolean) => JSON.stringify({ model: 'gpt-test', input: 'hi', stream });
  const message = (stream: boolean) => JSON.stringify({ model: 'gpt-test', max_tokens: 50, stream, messages: [{ role: 'user', content: 'hi' }] });
  it.each([
    ['/v1/chat/completions', chatCompletion],
    ['/api/chat', nativeChat],
    ['/v1/responses', response],
    ['/v1/messages', message],
  ] as const)('POST %s, streamed and not', async (path, bodyOf) => {
    for (const stream of [true, false]) {
      upstream.reset();
      upstream.plan = { headDelayMs: 3000 };
      const userId = `left-${path.replaceAll('/', '-').slice(1)}-${stream ? 'streamed' : 'complete'}`;
      const hold = limits.holdNext();
      const controller = new AbortController();
      const pending = fetch(`${gateway.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: stream ? 'text/event-stream' : 'application/json', 'x-sluice-user': userId, 'x-request-id': userId },
        body: bodyOf(stream),
        signal: controller.signal,
      }).catch((error: unknown) => error);
      await within(hold.reached, 2000, `${userId}: the request to reach admission`);
      controller.abort();
      expect(await pending).toBeInstanceOf(Error);
      // The request's log line is written when its response closes: the gateway saw the client leave.
      const logLine = await eventually(() => gateway.logs.find((line) => line.includes(`"requestId":"${userId}"`)), `${userId}: the request log line`);
      expect(logLine).toContain('"status":499');
      hold.release();

      await expectCancelled(userId);
    }
  });

  it('a chat on a WebSocket that closed meanwhile: cancelled once nobody resumed it within resumeGraceMs', async () => {
    const userId = 'left-websocket';
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/api/ws`, { headers: { 'x-sluice-user': userId } });
    await within(new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject)), 2000, 'the socket to open');
    await eventually(async () => ((await gateway.app.hub.connections(userId)).length === 1 ? true : undefined), 'the socket in the hub');
    const hold = limits.holdNext();
    socket.send(JSON.stringify({ type: 'chat', id: 'c1', model: 'gpt-test', message: 'hi' }));
    await within(hold.reached, 2000, 'the chat to reach admission');
    socket.terminate();
    // The session leaves the hub when its socket closes: the gateway saw the client leave.
    await eventually(async () => ((await gateway.app.hub.connections(userId)).length === 0 ? true : undefined), 'the socket to leave the hub');
    hold.release();

    await expectCancelled(userId);
  });
});

describe('a hub event stream whose client left while its key was looked up', () => {
  it('does not stay registered in the hub', async () => {
    // The key lookup misses the cache and waits on the store, as a slow database would make it wait.
    const store = await createStore('sqlite::memory:');
    let lookupReached!: () => void;
    let releaseLookup!: () => void;
    const reached = new Promise<void>((resolve) => (lookupReached = resolve));
    const released = new Promise<void>((resolve) => (releaseLookup = resolve));
    const held: Store = {
      ...store,
      keys: {
        ...store.keys,
        get: async (id) => {
          lookupReached();
          await released;
          return store.keys.get(id);
        },
      },
    };
    const keyed = await startGateway({ auth: { mode: 'keys' } }, {}, { store: held });
    try {
      const userId = 'left-hub-events';
      const { key } = await keyed.app.keys.create({ userId, role: 'user' });
      const controller = new AbortController();
      const pending = fetch(`${keyed.url}/api/events`, { headers: { authorization: `Bearer ${key}` }, signal: controller.signal }).catch((error: unknown) => error);
      await within(reached, 2000, 'the key lookup');
      controller.abort();
      expect(await pending).toBeInstanceOf(Error);
      await eventually(() => keyed.logs.find((line) => line.includes('"status":499')), 'the request log line of the client that left');
      releaseLookup();
      // The route runs within milliseconds of the lookup; a connection it registered for a client
      // already gone would stay registered for good.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await keyed.app.hub.connections(userId)).toEqual([]);
    } finally {
      await keyed.close();
      await store.close();
    }
  });
});
