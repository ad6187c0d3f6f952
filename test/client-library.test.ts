// `sluice/client` against a real Sluice over real sockets: chat gives the exact answer; a stream
// the gateway drops at random points resumes with Last-Event-ID and still gives every token once,
// with the upstream called once; cancel() ends with a `cancelled` event and closes the upstream;
// HTTP errors throw SluiceClientError with status and code; hub subscriptions over SSE and
// WebSocket survive a drop and replay what was pushed meanwhile, once and in order, and stop at an
// admin disconnect; resume() continues a chat after a simulated page reload; and src/client
// imports nothing that would not run in a browser.
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createSluiceClient, SluiceClientError, type ChatEvent, type PushEvent, type Subscription } from '../src/client/index.js';
import { openAiConfig, startGateway, type TestGateway } from './support/gateway.js';
import { splitText, startMockOpenAi, type MockOpenAi } from './support/mock-openai.js';
import { waitFor, within } from './support/wait.js';

let upstream: MockOpenAi;
let gateway: TestGateway;
const keys: Record<string, string> = {};

/** Drops planned for the next chat streams (POST /api/chat, then each resume): the socket is destroyed after that many deltas. */
const plannedDrops: number[] = [];
/** Resume requests seen (GET /api/generations/:id/events). */
let resumeRequests: { url: string; lastEventId: string | undefined }[] = [];
/** The gateway's responses to GET /api/events, newest last. */
let hubResponses: ServerResponse[] = [];
/** The sockets and URLs of WebSocket upgrades, newest last. */
let upgrades: { url: string; socket: Duplex }[] = [];
const subscriptions = new Set<Subscription>();

const answer = 'One two three four five six seven eight nine ten eleven twelve — 你好 🙂 thirteen fourteen fifteen.';

beforeAll(async () => {
  upstream = await startMockOpenAi();
  gateway = await startGateway(
    openAiConfig(upstream.baseUrl, upstream.apiKey, {
      auth: { mode: 'keys' },
      defaultModel: 'gpt-test',
      generations: { resumeGraceMs: 5000 },
    }),
  );
  keys['alice'] = (await gateway.app.keys.create({ userId: 'alice', role: 'user' })).key;
  keys['service'] = (await gateway.app.keys.create({ userId: 'backend', role: 'service' })).key;
  keys['admin'] = (await gateway.app.keys.create({ userId: 'root', role: 'admin' })).key;

  gateway.app.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const url = request.url ?? '';
    if (url.startsWith('/api/events')) hubResponses.push(response);
    const resume = /^\/api\/generations\/[^/]+\/events/.test(url);
    if (resume) resumeRequests.push({ url, lastEventId: headerOf(request, 'last-event-id') });
    if (!resume && !(request.method === 'POST' && url === '/api/chat')) return;
    const dropAfter = plannedDrops.shift();
    if (dropAfter !== undefined) dropAfterDeltas(response, dropAfter);
  });
  gateway.app.server.on('upgrade', (request: IncomingMessage, socket: Duplex) => upgrades.push({ url: request.url ?? '', socket }));
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});
beforeEach(() => {
  upstream.reset();
  plannedDrops.length = 0;
  resumeRequests = [];
  hubResponses = [];
  upgrades = [];
});
afterEach(() => {
  for (const subscription of subscriptions) subscription.close();
  subscriptions.clear();
  vi.unstubAllGlobals();
});

function headerOf(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Breaks the response's connection (a lost network, server side) once `count` deltas were written:
 * nothing after that write reaches the client. The socket goes a moment later, so that what was
 * written (the head at least) has left it; destroying it at once could discard even the head.
 */
function dropAfterDeltas(response: ServerResponse, count: number): void {
  let deltas = 0;
  const write = response.write.bind(response);
  response.write = ((...args: unknown[]) => {
    if (deltas >= count) return true;
    const result = Reflect.apply(write, response, args) as boolean;
    deltas += String(args[0]).split('event: delta\n').length - 1;
    if (deltas >= count) setTimeout(() => response.socket?.destroy(), 5);
    return result;
  }) as typeof response.write;
}

function clientFor(name: string, extra: Partial<Parameters<typeof createSluiceClient>[0]> = {}): ReturnType<typeof createSluiceClient> {
  return createSluiceClient({ baseUrl: gateway.url, apiKey: keys[name] ?? '', retry: { baseDelayMs: 20, maxDelayMs: 200 }, ...extra });
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

function textOf(events: readonly ChatEvent[]): string {
  return events.map((event) => (event.type === 'delta' ? (event.text ?? '') : '')).join('');
}

/** Whether the hub holds `count` connections of alice. */
async function aliceConnections(): Promise<number> {
  return (await gateway.app.hub.counts()).byUser['alice'] ?? 0;
}

async function waitForAliceConnections(count: number): Promise<void> {
  const deadline = performance.now() + 5000;
  while ((await aliceConnections()) !== count) {
    if (performance.now() > deadline) throw new Error(`the hub never held ${count.toString()} connections of alice`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function pushToAlice(data: unknown): Promise<{ id: string; connections: number }> {
  const response = await fetch(`${gateway.url}/api/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${keys['service'] ?? ''}` },
    body: JSON.stringify({ to: { users: ['alice'] }, event: 'note', data }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { id: string; connections: number };
}

/** A fetch that records each call and holds the `held`-th call to a path until released. */
function gatedFetch(path: string, held: number): { fetch: typeof fetch; calls: { path: string; headers: Headers }[]; release: () => void; waiting: () => boolean } {
  const calls: { path: string; headers: Headers }[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let waiting = false;
  const wrapped: typeof fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : input);
    calls.push({ path: url.pathname, headers: new Headers(init?.headers) });
    if (url.pathname === path && calls.filter((call) => call.path === path).length === held) {
      waiting = true;
      await gate;
    }
    return fetch(input, init);
  };
  return { fetch: wrapped, calls, release, waiting: () => waiting };
}

describe('chat', () => {
  it('yields meta, every delta and done, and text() is the exact answer', async () => {
    upstream.plan = { text: answer, chunkCount: 12 };
    const client = clientFor('alice');
    const stream = client.chat({ message: 'count', model: 'gpt-test' });
    const events = await collect(stream);
    expect(events[0]).toMatchObject({ type: 'meta', model: 'gpt-test', userId: 'alice' });
    expect(events.at(-1)).toMatchObject({ type: 'done', finishReason: 'stop' });
    expect(events.some((event) => event.type === 'usage')).toBe(true);
    expect(textOf(events)).toBe(answer);
    expect(stream.generationId).toBe(events[0]?.type === 'meta' ? events[0].generationId : 'missing');
    expect(stream.lastEventId).toBe(events.at(-1)?.id);

    upstream.plan = { text: answer, chunkCount: 5 };
    expect(await client.chat({ message: 'again' }).text()).toBe(answer);
    expect(upstream.requests).toHaveLength(2);
  });

  it('resumes a stream dropped server side at random points with Last-Event-ID: the exact text, each token once, the upstream called once', async () => {
    const pieces = splitText(answer, 24);
    for (let round = 0; round < 6; round++) {
      upstream.reset();
      // Slow enough that no answer ends (response.end bypasses write) between a drop and its socket's end.
      upstream.plan = { pieces, delayMs: 12 };
      resumeRequests = [];
      // Two drops: one in the first stream, one (when it gets that far) in the first resume.
      const drops = [1 + Math.floor(Math.random() * (pieces.length - 1)), 1 + Math.floor(Math.random() * 6)];
      plannedDrops.push(...drops);
      const events = await within(collect(clientFor('alice').chat({ message: `round ${round.toString()}` })), 10_000, `round ${round.toString()}`);
      const where = `drops after ${drops.join(', ')} deltas`;
      expect(textOf(events), where).toBe(pieces.join(''));
      expect(events.filter((event) => event.type === 'meta'), where).toHaveLength(1);
      expect(events.at(-1)?.type, where).toBe('done');
      const seqs = events.map((event) => Number(event.id?.split(':')[1]));
      expect(seqs, `${where}: every event once, in order`).toEqual([...seqs].sort((a, b) => a - b).filter((seq, index, all) => all.indexOf(seq) === index));
      expect(resumeRequests.length, where).toBeGreaterThanOrEqual(1);
      expect(resumeRequests[0]?.lastEventId, where).toMatch(/^[A-Za-z0-9_-]+:\d+$/);
      expect(upstream.requests, where).toHaveLength(1);
    }
  });

  it('resumes from the start when the stream drops after the response head but before meta', async () => {
    // Slow enough that the answer cannot end (response.end bypasses write) before the drop.
    upstream.plan = { text: answer, chunkCount: 6, delayMs: 50 };
    gateway.app.server.once('request', (request: IncomingMessage, response: ServerResponse) => {
      if (request.url !== '/api/chat') return;
      let dropping = false;
      response.write = (() => {
        // Only the head (with x-sluice-generation-id) leaves, no event; then the connection breaks.
        if (!dropping) {
          dropping = true;
          response.flushHeaders();
          setTimeout(() => response.socket?.destroy(), 30);
        }
        return true;
      }) as typeof response.write;
    });
    const events = await collect(clientFor('alice').chat({ message: 'head only' }));
    expect(events[0]?.type).toBe('meta');
    expect(textOf(events)).toBe(answer);
    expect(resumeRequests).toHaveLength(1);
    expect(resumeRequests[0]?.lastEventId).toBeUndefined();
    expect(upstream.requests).toHaveLength(1);
  });

  it('throws stream_interrupted when the stream ends before anything names the generation', async () => {
    const emptyStream: typeof fetch = async () => new Response('', { status: 200, headers: { 'content-type': 'text/event-stream' } });
    await expect(clientFor('alice', { fetch: emptyStream }).chat({ message: 'hi' }).text()).rejects.toMatchObject({ name: 'SluiceClientError', code: 'stream_interrupted' });
  });

  it('cancel() ends the stream with a cancelled error event and closes the upstream', async () => {
    upstream.plan = { pieces: splitText(answer, 60), delayMs: 20 };
    const stream = clientFor('alice').chat({ message: 'long' });
    const events: ChatEvent[] = [];
    for await (const event of stream) {
      events.push(event);
      if (events.filter((seen) => seen.type === 'delta').length === 3) await stream.cancel();
    }
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'cancelled', retryable: false });
    expect(events.filter((event) => event.type === 'done')).toHaveLength(0);
    const request = upstream.requests[0];
    if (!request) throw new Error('the upstream was never called');
    await within(request.closed, 2000, 'the upstream connection to close after cancel()');
  });

  it('cancel() before the gateway answered sends nothing and ends with a local cancelled event', async () => {
    const stream = clientFor('alice').chat({ message: 'never mind' });
    await stream.cancel();
    const events = await collect(stream);
    expect(events).toEqual([{ type: 'error', code: 'cancelled', message: expect.any(String) as string, retryable: false }]);
    expect(upstream.requests).toHaveLength(0);
  });

  it('stops reading on abort without cancelling, and resume() after a simulated page reload continues from the stored lastEventId', async () => {
    const pieces = splitText(answer, 30);
    upstream.plan = { pieces, delayMs: 15 };
    const controller = new AbortController();
    const stream = clientFor('alice').chat({ message: 'reload me', signal: controller.signal });
    const before: ChatEvent[] = [];
    for await (const event of stream) {
      before.push(event);
      if (before.filter((seen) => seen.type === 'delta').length === 5) controller.abort();
    }
    // The page stored this before it reloaded.
    const stored = stream.lastEventId;
    expect(stored).toBe(before.at(-1)?.id);
    expect(before.at(-1)?.type).toBe('delta');

    const reloaded = clientFor('alice').resume({ lastEventId: stored ?? '' });
    expect(reloaded.generationId).toBe(stream.generationId);
    const after = await collect(reloaded);
    expect(after.some((event) => event.type === 'meta')).toBe(false);
    expect(after.at(-1)?.type).toBe('done');
    expect(textOf(before) + textOf(after)).toBe(pieces.join(''));
    expect(upstream.requests).toHaveLength(1);

    // Resuming at the end of a finished generation (204) yields nothing.
    expect(await collect(clientFor('alice').resume({ lastEventId: reloaded.lastEventId ?? '' }))).toEqual([]);
  });
});

describe('HTTP errors', () => {
  it('throw SluiceClientError with the status and the gateway code', async () => {
    const bad = createSluiceClient({ baseUrl: gateway.url, apiKey: 'sk-not-a-real-key' });
    const failure = await bad
      .chat({ message: 'hi' })
      .text()
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(SluiceClientError);
    expect(failure).toMatchObject({ status: 401, code: 'invalid_api_key' });
    await expect(bad.models()).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });
    await expect(bad.ticket()).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });
    await expect(collect(bad.subscribe())).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });

    const alice = clientFor('alice');
    await expect(alice.chat({ message: 'hi', model: 'no-such-model' }).text()).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    await expect(alice.conversations.get('missing')).rejects.toMatchObject({ status: 404, code: 'conversation_not_found' });
    await expect(collect(alice.resume({ lastEventId: 'NoSuchGeneration1:3' }))).rejects.toMatchObject({ status: 404, code: 'generation_not_found' });
    await expect(collect(alice.resume({ lastEventId: 'not an id' }))).rejects.toMatchObject({ code: 'invalid_request' });
  });

  it('models, tickets and conversations round-trip', async () => {
    const alice = clientFor('alice');
    expect(await alice.models()).toContainEqual(expect.objectContaining({ id: 'gpt-test', owned_by: 'upstream' }));
    expect(await alice.ticket()).toMatch(/\S{16,}/);
    upstream.plan = { text: 'stored answer' };
    expect(await alice.chat({ message: 'remember', conversationId: 'client-c1' }).text()).toBe('stored answer');
    // The turns are stored as the answer ends, a moment after its last event.
    const deadline = performance.now() + 3000;
    let conversation = await alice.conversations.get('client-c1');
    while (conversation.messages.length < 2 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      conversation = await alice.conversations.get('client-c1');
    }
    expect(conversation.messages.map((message) => [message.role, message.content])).toEqual([
      ['user', 'remember'],
      ['assistant', 'stored answer'],
    ]);
    expect((await alice.conversations.list()).map((summary) => summary.id)).toContain('client-c1');
    await alice.conversations.delete('client-c1');
    await expect(alice.conversations.get('client-c1')).rejects.toMatchObject({ status: 404 });
  });
});

describe('hub subscription', () => {
  /** Subscribes as alice and collects pushes in the background. */
  function subscribeAlice(transport: 'sse' | 'ws', fetchFunction: typeof fetch): { received: PushEvent[]; ended: Promise<void>; subscription: Subscription } {
    const subscription = clientFor('alice', { fetch: fetchFunction, WebSocket }).subscribe({ transport });
    subscriptions.add(subscription);
    const received: PushEvent[] = [];
    const ended = (async () => {
      for await (const push of subscription) received.push(push);
    })();
    return { received, ended, subscription };
  }

  it.each(['sse', 'ws'] as const)('over %s survives a drop and replays what was pushed meanwhile, once and in order', async (transport) => {
    // The reconnect is held until the pushes are made, so they are missed for certain.
    await waitForAliceConnections(0);
    const gated = gatedFetch(transport === 'sse' ? '/api/events' : '/api/tickets', 2);
    const { received, ended, subscription } = subscribeAlice(transport, gated.fetch);
    await waitForAliceConnections(1);
    const seen = [await pushToAlice({ n: 1 }), await pushToAlice({ n: 2 })];
    await waitFor(() => received.length === 2, 'the first two pushes');

    if (transport === 'sse') hubResponses.at(-1)?.socket?.destroy();
    else upgrades.at(-1)?.socket.destroy();
    await waitFor(gated.waiting, 'the client to reconnect');
    await waitForAliceConnections(0);
    const missed = [await pushToAlice({ n: 3 }), await pushToAlice({ n: 4 }), await pushToAlice({ n: 5 })];
    expect(missed.map((push) => push.connections)).toEqual([0, 0, 0]);
    gated.release();
    await waitFor(() => received.length === 5, 'the replay');
    await waitForAliceConnections(1);
    const live = await pushToAlice({ n: 6 });
    await waitFor(() => received.length === 6, 'the live push after the replay');

    expect(received.map((push) => [push.id, push.event, push.data])).toEqual([...seen, ...missed, live].map((push, index) => [push.id, 'note', { n: index + 1 }]));
    expect(subscription.lastEventId).toBe(live.id);
    if (transport === 'sse') {
      const opens = gated.calls.filter((call) => call.path === '/api/events');
      expect(opens.map((call) => call.headers.get('last-event-id'))).toEqual([null, seen[1]?.id]);
      expect(opens.every((call) => call.headers.get('authorization') === `Bearer ${keys['alice'] ?? ''}`)).toBe(true);
    } else {
      expect(gated.calls.filter((call) => call.path === '/api/tickets')).toHaveLength(2);
      expect(upgrades.map((upgrade) => new URL(upgrade.url, 'http://x').searchParams.get('lastEventId'))).toEqual([null, seen[1]?.id]);
      expect(upgrades.every((upgrade) => /[?&]ticket=/.test(upgrade.url) && !upgrade.url.includes(keys['alice'] ?? '?'))).toBe(true);
    }
    subscription.close();
    await within(ended, 2000, 'the iteration to end after close()');
  });

  it.each(['sse', 'ws'] as const)('over %s ends at an admin disconnect instead of reconnecting', async (transport) => {
    await waitForAliceConnections(0);
    const gated = gatedFetch('/none', 0);
    const { ended } = subscribeAlice(transport, gated.fetch);
    await waitForAliceConnections(1);
    const response = await fetch(`${gateway.url}/api/connections/alice`, { method: 'DELETE', headers: { authorization: `Bearer ${keys['admin'] ?? ''}` } });
    expect(response.status).toBe(200);
    await within(ended, 3000, 'the iteration to end after the admin disconnect');
    expect(gated.calls.filter((call) => call.path === '/api/events' || call.path === '/api/tickets')).toHaveLength(1);
  });

  it('over ws without a WebSocket constructor fails at once, naming the option', () => {
    vi.stubGlobal('WebSocket', undefined);
    const client = createSluiceClient({ baseUrl: gateway.url, apiKey: keys['alice'] ?? '' });
    expect(() => client.subscribe({ transport: 'ws' })).toThrow(/`WebSocket` option/);
    expect(() => client.subscribe({ transport: 'ws' })).toThrow(expect.objectContaining({ code: 'websocket_unavailable' }) as Error);
  });
});

describe('portability', () => {
  const folder = new URL('../src/client/', import.meta.url);
  const files = readdirSync(folder).filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts'));

  it('src/client imports only itself and eventsource-parser, and uses no Node globals', () => {
    expect(files.length).toBeGreaterThan(3);
    for (const name of files) {
      const source = readFileSync(new URL(name, folder), 'utf8');
      expect(name, 'kebab-case file names').toMatch(/^[a-z0-9]+(-[a-z0-9]+)*\.ts$/);
      const specifiers = [...source.matchAll(/(?:^|\s)(?:import|export)\s[^;]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]|^import\s+['"]([^'"]+)['"]/gm)].map((match) => match[1] ?? match[2] ?? match[3]);
      for (const specifier of specifiers) expect(specifier === 'eventsource-parser' || /^\.\/[a-z0-9-]+\.js$/.test(specifier ?? ''), `${name} imports ${specifier ?? '?'}`).toBe(true);
      for (const forbidden of [/\bprocess\./, /\bBuffer\b/, /\brequire\(/, /['"]node:/, /\b__dirname\b/, /\bglobal\./, /\bsetImmediate\b/]) {
        expect(forbidden.test(source), `${name} uses ${forbidden.source}`).toBe(false);
      }
    }
  });

  it('is exported as sluice/client, built from src/client', () => {
    const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { exports: Record<string, unknown> };
    expect(packageJson.exports['.']).toBe('./dist/app.js');
    expect(packageJson.exports['./client']).toEqual({ types: './dist/client/index.d.ts', default: './dist/client/index.js' });
    expect(files).toContain('index.ts');
  });
});
