// The per-user hub over real sockets: a push reaches exactly the targeted users' SSE connections
// (and says how many); a reconnect with Last-Event-ID replays what it missed, broadcasts included,
// in order and never twice; retention by count and age; operators list and close connections;
// streams end cleanly at their maximum age and are cut off when their reader stops reading;
// tickets open one stream; roles guard push and the connection routes; bad push bodies name the
// field; heartbeats are lone comment lines; and 5000 idle connections stay open and all get a
// broadcast.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { createParser } from 'eventsource-parser';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Hub } from '../src/hub/hub.js';
import { createMemoryHub } from '../src/hub/memory-hub.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { waitFor, within } from './support/wait.js';

interface HubEvent {
  id: string | undefined;
  event: string | undefined;
  data: string;
}

/** An EventSource-like reader of GET /api/events, over fetch. */
interface EventsClient {
  readonly response: Response;
  readonly events: HubEvent[];
  /** Every byte of the body so far, as text. */
  readonly raw: () => string;
  /** Resolves when the body ends: `end` when the server ended it, `aborted` when we did. */
  readonly ended: Promise<'end' | 'aborted'>;
  readonly isEnded: () => boolean;
  abort(): void;
}

const clients = new Set<EventsClient>();
const sockets = new Set<Socket>();

afterEach(() => {
  for (const client of clients) client.abort();
  clients.clear();
  for (const socket of sockets) socket.destroy();
  sockets.clear();
});

async function openEvents(baseUrl: string, options: { headers?: Record<string, string>; query?: string } = {}): Promise<EventsClient> {
  const controller = new AbortController();
  const response = await fetch(`${baseUrl}/api/events${options.query ? `?${options.query}` : ''}`, { headers: { accept: 'text/event-stream', ...options.headers }, signal: controller.signal });
  const events: HubEvent[] = [];
  let raw = '';
  let done = false;
  const parser = createParser({ onEvent: (message) => events.push({ id: message.id, event: message.event, data: message.data }) });
  const ended = (async (): Promise<'end' | 'aborted'> => {
    // An error answer is left unread, for the test to read as JSON.
    if (!response.body || response.status !== 200) return 'end';
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        const text = decoder.decode(chunk, { stream: true });
        raw += text;
        parser.feed(text);
      }
      return 'end';
    } catch {
      return 'aborted';
    } finally {
      done = true;
    }
  })();
  const client: EventsClient = { response, events, raw: () => raw, ended, isEnded: () => done, abort: () => controller.abort() };
  clients.add(client);
  return client;
}

async function openStream(baseUrl: string, headers: Record<string, string>, query?: string): Promise<EventsClient> {
  const client = await openEvents(baseUrl, { headers, ...(query !== undefined ? { query } : {}) });
  expect(client.response.status).toBe(200);
  expect(client.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  return client;
}

async function push(baseUrl: string, headers: Record<string, string>, body: unknown): Promise<Response> {
  return fetch(`${baseUrl}/api/push`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
}

async function pushOk(baseUrl: string, headers: Record<string, string>, body: unknown): Promise<{ id: string; connections: number }> {
  const response = await push(baseUrl, headers, body);
  expect(response.status).toBe(200);
  return (await response.json()) as { id: string; connections: number };
}

async function errorOf(response: Response): Promise<{ status: number; code: string; param: string | null; message: string }> {
  const body = (await response.json()) as { error: { code: string; param: string | null; message: string } };
  return { status: response.status, code: body.error.code, param: body.error.param, message: body.error.message };
}

function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

/**
 * Waits until the hub holds exactly these connections per user (registration follows the response
 * head closely, and a stream a test aborted leaves the hub a moment later).
 */
async function hubHolds(gateway: TestGateway, byUser: Record<string, number>): Promise<void> {
  const wanted = JSON.stringify(Object.entries(byUser).sort());
  const deadline = performance.now() + 5000;
  for (;;) {
    const counts = await gateway.app.hub.counts();
    const held = JSON.stringify(Object.entries(counts.byUser).sort());
    if (held === wanted) return;
    if (performance.now() > deadline) throw new Error(`the hub holds ${held.slice(0, 200)}, not ${wanted.slice(0, 200)}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('with API keys', () => {
  let gateway: TestGateway;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    gateway = await startGateway({ auth: { mode: 'keys' }, server: { heartbeatMs: 100 } });
    for (const userId of ['alice', 'bob', 'carol']) keys[userId] = (await gateway.app.keys.create({ userId, role: 'user' })).key;
    keys['service'] = (await gateway.app.keys.create({ userId: 'backend', role: 'service' })).key;
    keys['admin'] = (await gateway.app.keys.create({ userId: 'root', role: 'admin' })).key;
  });
  afterAll(async () => {
    await gateway?.close();
  });

  const as = (name: string): Record<string, string> => bearer(keys[name] ?? '');

  /** Two streams for each of alice, bob and carol. */
  async function sixStreams(): Promise<Record<string, EventsClient[]>> {
    const streams: Record<string, EventsClient[]> = {};
    for (const userId of ['alice', 'bob', 'carol']) streams[userId] = [await openStream(gateway.url, as(userId)), await openStream(gateway.url, as(userId))];
    await hubHolds(gateway, { alice: 2, bob: 2, carol: 2 });
    return streams;
  }

  async function closeAll(streams: Record<string, EventsClient[]>): Promise<void> {
    for (const client of Object.values(streams).flat()) client.abort();
    await hubHolds(gateway, {});
  }

  it('pushes to one user, to a list and to all, counting exactly the connections reached', async () => {
    const streams = await sixStreams();
    const service = as('service');
    const one = await pushOk(gateway.url, service, { to: { users: ['alice'] }, event: 'note', data: { n: 1 } });
    expect(one.connections).toBe(2);
    const list = await pushOk(gateway.url, service, { to: { users: ['alice', 'bob', 'alice', 'nobody'] }, event: 'note', data: { n: 2 } });
    expect(list.connections).toBe(4);
    const all = await pushOk(gateway.url, service, { to: { all: true }, event: 'deploy', data: 'v2' });
    expect(all.connections).toBe(6);
    expect(Number(one.id) < Number(list.id) && Number(list.id) < Number(all.id)).toBe(true);

    const received = (client: EventsClient): string[] => client.events.map((event) => `${event.id ?? ''} ${event.event ?? ''} ${event.data}`);
    for (const client of Object.values(streams).flat()) await waitFor(() => client.events.some((event) => event.event === 'deploy'), 'the broadcast on every stream');
    for (const client of streams['alice'] ?? []) expect(received(client)).toEqual([`${one.id} note {"n":1}`, `${list.id} note {"n":2}`, `${all.id} deploy "v2"`]);
    for (const client of streams['bob'] ?? []) expect(received(client)).toEqual([`${list.id} note {"n":2}`, `${all.id} deploy "v2"`]);
    // Carol was never targeted: the broadcast, which came last, is all she has.
    for (const client of streams['carol'] ?? []) expect(received(client)).toEqual([`${all.id} deploy "v2"`]);
    expect(streams['alice']?.[0]?.raw()).toContain(`event: note\nid: ${one.id}\ndata: {"n":1}\n\n`);
    await closeAll(streams);
  });

  it('replays missed pushes after Last-Event-ID, broadcasts included, in order and none repeated, then follows live', async () => {
    const service = as('service');
    const first = await openStream(gateway.url, as('alice'));
    await hubHolds(gateway, { alice: 1 });
    const seen = await pushOk(gateway.url, service, { to: { users: ['alice'] }, event: 'note', data: 'seen' });
    await waitFor(() => first.events.length === 1, 'the first push');
    first.abort();
    await hubHolds(gateway, {});

    const missed = [
      await pushOk(gateway.url, service, { to: { users: ['alice'] }, event: 'note', data: 'own-1' }),
      await pushOk(gateway.url, service, { to: { all: true }, event: 'news', data: 'all-1' }),
      await pushOk(gateway.url, service, { to: { users: ['bob'] }, event: 'note', data: 'bob-only' }),
      await pushOk(gateway.url, service, { to: { users: ['bob', 'alice'] }, event: 'note', data: 'own-2' }),
      await pushOk(gateway.url, service, { to: { all: true }, event: 'news', data: 'all-2' }),
    ];
    expect(missed.every((result) => result.connections === 0)).toBe(true);

    const again = await openStream(gateway.url, { ...as('alice'), 'last-event-id': seen.id });
    await hubHolds(gateway, { alice: 1 });
    const live = await pushOk(gateway.url, service, { to: { users: ['alice'] }, event: 'note', data: 'live' });
    expect(live.connections).toBe(1);
    await waitFor(() => again.events.length >= 5, 'the replay and the live push');
    expect(again.events.map((event) => [event.id, JSON.parse(event.data) as unknown])).toEqual([
      [missed[0]?.id, 'own-1'],
      [missed[1]?.id, 'all-1'],
      [missed[3]?.id, 'own-2'],
      [missed[4]?.id, 'all-2'],
      [live.id, 'live'],
    ]);

    // The `lastEventId` query parameter does the same, for a client that opens a new EventSource.
    const fromQuery = await openStream(gateway.url, as('alice'), `lastEventId=${missed[3]?.id ?? ''}`);
    await waitFor(() => fromQuery.events.length >= 2, 'the replay from the query');
    expect(fromQuery.events.map((event) => event.data)).toEqual(['"all-2"', '"live"']);
  });

  it('refuses a Last-Event-ID that is not a hub id, naming it', async () => {
    const header = await openEvents(gateway.url, { headers: { ...as('alice'), 'last-event-id': 'gen_1:5' } });
    expect(await errorOf(header.response)).toMatchObject({ status: 400, code: 'invalid_request', param: 'Last-Event-ID' });
    const query = await openEvents(gateway.url, { headers: as('alice'), query: 'lastEventId=-1' });
    expect(await errorOf(query.response)).toMatchObject({ status: 400, code: 'invalid_request', param: 'lastEventId' });
  });

  it('lists connections with user, transport, node and age, and counts them per user and in total', async () => {
    const streams = await sixStreams();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const response = await fetch(`${gateway.url}/api/connections`, { headers: as('admin') });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { data: { id: string; userId: string; transport: string; node: string; openedAt: string; ageMs: number }[]; counts: unknown };
    expect(body.counts).toEqual({ total: 6, byUser: { alice: 2, bob: 2, carol: 2 } });
    expect(body.data.map((connection) => connection.userId).sort()).toEqual(['alice', 'alice', 'bob', 'bob', 'carol', 'carol']);
    expect(new Set(body.data.map((connection) => connection.id)).size).toBe(6);
    for (const connection of body.data) {
      expect(connection).toMatchObject({ transport: 'sse', node: gateway.app.hub.nodeId });
      expect(Date.parse(connection.openedAt)).toBeLessThanOrEqual(Date.now());
      expect(connection.ageMs).toBeGreaterThanOrEqual(20);
    }
    const filtered = (await (await fetch(`${gateway.url}/api/connections?userId=bob`, { headers: as('admin') })).json()) as { data: { userId: string }[] };
    expect(filtered.data.map((connection) => connection.userId)).toEqual(['bob', 'bob']);
    await closeAll(streams);
  });

  it('DELETE /api/connections/:userId ends that user\'s streams, says not to reconnect, and leaves others open', async () => {
    const streams = await sixStreams();
    const response = await fetch(`${gateway.url}/api/connections/alice`, { method: 'DELETE', headers: as('admin') });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ userId: 'alice', closed: 2 });
    for (const client of streams['alice'] ?? []) {
      expect(await within(client.ended, 2000, 'alice\'s stream to end')).toBe('end');
      const last = client.events.at(-1);
      expect(last?.event).toBe('close');
      expect(JSON.parse(last?.data ?? '{}')).toMatchObject({ reason: 'disconnected', reconnect: false });
    }
    await hubHolds(gateway, { bob: 2, carol: 2 });
    expect((await pushOk(gateway.url, as('service'), { to: { all: true }, event: 'after', data: null })).connections).toBe(4);
    for (const client of [...(streams['bob'] ?? []), ...(streams['carol'] ?? [])]) {
      await waitFor(() => client.events.some((event) => event.event === 'after'), 'the push after the disconnect');
      expect(client.isEnded()).toBe(false);
    }
    expect(await (await fetch(`${gateway.url}/api/connections/nobody`, { method: 'DELETE', headers: as('admin') })).json()).toEqual({ userId: 'nobody', closed: 0 });
    expect(await errorOf(await fetch(`${gateway.url}/api/connections/bad%20id`, { method: 'DELETE', headers: as('admin') }))).toMatchObject({ status: 400, param: 'userId' });
    await closeAll(streams);
  });

  it('opens /api/events with a ticket from POST /api/tickets once; the second use is refused', async () => {
    const issued = await fetch(`${gateway.url}/api/tickets`, { method: 'POST', headers: as('carol') });
    expect(issued.status).toBe(201);
    const { ticket } = (await issued.json()) as { ticket: string };
    const stream = await openStream(gateway.url, {}, `ticket=${ticket}`);
    await hubHolds(gateway, { carol: 1 });
    expect((await pushOk(gateway.url, as('service'), { to: { users: ['carol'] }, event: 'hello', data: 1 })).connections).toBe(1);
    await waitFor(() => stream.events.length === 1, 'the push over the ticket stream');
    const again = await openEvents(gateway.url, { query: `ticket=${ticket}` });
    expect(await errorOf(again.response)).toMatchObject({ status: 401, code: 'invalid_ticket' });
    stream.abort();
    await hubHolds(gateway, {});

    // EventSource reconnects to the same URL, spent ticket included, with Last-Event-ID: that
    // reopens this channel (and replays what was missed), while a spent ticket alone still does not.
    await pushOk(gateway.url, as('service'), { to: { users: ['carol'] }, event: 'missed', data: 2 });
    const reopened = await openStream(gateway.url, { 'last-event-id': stream.events[0]?.id ?? '' }, `ticket=${ticket}`);
    await waitFor(() => reopened.events.some((event) => event.event === 'missed'), 'the missed push on the reopened channel');
    reopened.abort();
    await hubHolds(gateway, {});
    expect(await errorOf((await openEvents(gateway.url, { query: `ticket=${ticket}` })).response)).toMatchObject({ status: 401 });
    // Nor does a Last-Event-ID that is not a hub id.
    expect(await errorOf((await openEvents(gateway.url, { query: `ticket=${ticket}`, headers: { 'last-event-id': 'abc:1' } })).response)).toMatchObject({ status: 401 });
  });

  it('refuses user credentials on /api/push and the connection routes, and service credentials on the latter', async () => {
    expect(await errorOf(await push(gateway.url, as('alice'), { to: { all: true }, event: 'x', data: 1 }))).toMatchObject({ status: 403, code: 'forbidden' });
    expect((await errorOf(await fetch(`${gateway.url}/api/connections`, { headers: as('alice') }))).status).toBe(403);
    expect((await errorOf(await fetch(`${gateway.url}/api/connections/bob`, { method: 'DELETE', headers: as('alice') }))).status).toBe(403);
    expect((await errorOf(await fetch(`${gateway.url}/api/connections`, { headers: as('service') }))).status).toBe(403);
    expect((await errorOf(await fetch(`${gateway.url}/api/events`))).status).toBe(401);
    expect((await push(gateway.url, as('admin'), { to: { all: true }, event: 'x', data: 1 })).status).toBe(200);
  });

  it.each<[string, string, unknown]>([
    ['no target', 'to', { event: 'x', data: 1 }],
    ['an empty target', 'to', { to: {}, event: 'x', data: 1 }],
    ['both users and all', 'to', { to: { users: ['a'], all: true }, event: 'x', data: 1 }],
    ['all: false', 'to.all', { to: { all: false }, event: 'x', data: 1 }],
    ['no users', 'to.users', { to: { users: [] }, event: 'x', data: 1 }],
    ['a bad user id', 'to.users[1]', { to: { users: ['ok', 'not ok'] }, event: 'x', data: 1 }],
    ['1001 users', 'to.users', { to: { users: Array.from({ length: 1001 }, (_, index) => `u${index.toString()}`) }, event: 'x', data: 1 }],
    ['no event', 'event', { to: { all: true }, data: 1 }],
    ['an event with a line break', 'event', { to: { all: true }, event: 'a\nb', data: 1 }],
    ['an event of 65 characters', 'event', { to: { all: true }, event: 'e'.repeat(65), data: 1 }],
    ['the reserved event "close"', 'event', { to: { all: true }, event: 'close', data: 1 }],
    ['no data', 'data', { to: { all: true }, event: 'x' }],
    ['data over 64 KiB', 'data', { to: { all: true }, event: 'x', data: 'z'.repeat(70_000) }],
    ['an unknown field', 'ttl', { to: { all: true }, event: 'x', data: 1, ttl: 5 }],
  ])('refuses a push body with %s, naming %s', async (_name, param, body) => {
    const error = await errorOf(await push(gateway.url, as('service'), body));
    expect(error).toMatchObject({ status: 400, code: 'invalid_request', param });
    expect(error.message.startsWith(`${param}: `)).toBe(true);
  });

  it('writes heartbeats as lone `: ping` comment lines, with no blank line after them', async () => {
    const stream = await openStream(gateway.url, as('bob'));
    await waitFor(() => stream.raw().split(': ping\n').length > 3, 'three heartbeats', 3000);
    await hubHolds(gateway, { bob: 1 });
    await pushOk(gateway.url, as('service'), { to: { users: ['bob'] }, event: 'x', data: 1 });
    await waitFor(() => stream.events.length === 1, 'the push');
    await waitFor(() => stream.raw().split(': ping\n').length > 5, 'heartbeats after the push', 3000);
    const raw = stream.raw();
    expect(raw).not.toContain(': ping\n\n');
    expect(raw.replaceAll(': ping\n', '')).toMatch(/^event: x\nid: \d+\ndata: 1\n\n$/);
    stream.abort();
    await hubHolds(gateway, {});
  });
});

describe('maximum connection age', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway({ server: { heartbeatMs: 50 }, hub: { maxConnectionAgeMs: 300 } });
  });
  afterAll(async () => {
    await gateway?.close();
  });

  it('ends the stream cleanly with a close event that says to reconnect, and a retry hint', async () => {
    const openedAt = performance.now();
    const stream = await openStream(gateway.url, { 'x-sluice-user': 'dora' });
    expect(await within(stream.ended, 3000, 'the stream to reach its maximum age')).toBe('end');
    const ageMs = performance.now() - openedAt;
    // 90 to 100 % of the maximum (the jitter), plus scheduling.
    expect(ageMs).toBeGreaterThanOrEqual(260);
    expect(ageMs).toBeLessThan(1500);
    const last = stream.events.at(-1);
    expect(last?.event).toBe('close');
    expect(last?.id).toBeUndefined();
    expect(JSON.parse(last?.data ?? '{}')).toMatchObject({ reason: 'max_connection_age', reconnect: true });
    expect(stream.raw()).toMatch(/event: close\nretry: 1000\ndata: \{.*\}\n\n$/);
    await hubHolds(gateway, {});
  });
});

describe('retention and slow readers', () => {
  let gateway: TestGateway;
  const maxBufferedBytes = 64 * 1024;
  beforeAll(async () => {
    gateway = await startGateway({ server: { maxBufferedBytes }, hub: { retentionCount: 3, retentionMs: 400 } });
  });
  afterAll(async () => {
    await gateway?.close();
  });
  const user = (userId: string): Record<string, string> => ({ 'x-sluice-user': userId });

  it('replays only the newest retentionCount pushes', async () => {
    const ids: string[] = [];
    for (let index = 0; index < 5; index++) ids.push((await pushOk(gateway.url, {}, { to: { users: ['rita'] }, event: 'n', data: index })).id);
    const stream = await openStream(gateway.url, { ...user('rita'), 'last-event-id': '0' });
    await waitFor(() => stream.events.length >= 3, 'the replay');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stream.events.map((event) => [event.id, event.data])).toEqual([
      [ids[2], '2'],
      [ids[3], '3'],
      [ids[4], '4'],
    ]);
  });

  it('does not replay pushes older than retentionMs', async () => {
    await pushOk(gateway.url, {}, { to: { users: ['omar'] }, event: 'old', data: 1 });
    await pushOk(gateway.url, {}, { to: { all: true }, event: 'old-broadcast', data: 1 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const fresh = await pushOk(gateway.url, {}, { to: { users: ['omar'] }, event: 'fresh', data: 2 });
    const stream = await openStream(gateway.url, { ...user('omar'), 'last-event-id': '0' });
    await waitFor(() => stream.events.length >= 1, 'the replay');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stream.events.map((event) => [event.id, event.event])).toEqual([[fresh.id, 'fresh']]);
  });

  it('cuts off a reader that stops reading, with client_too_slow, before buffering without bound', async () => {
    const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1');
    sockets.add(socket);
    socket.pause();
    // HTTP/1.0: no chunked framing, so the body is the bytes as written.
    socket.write('GET /api/events HTTP/1.0\r\nhost: 127.0.0.1\r\nx-sluice-user: sloth\r\n\r\n');
    await hubHolds(gateway, { sloth: 1 });
    const data = 'z'.repeat(60_000);
    let pushes = 0;
    let reached = 1;
    const heapBefore = process.memoryUsage().heapUsed;
    // The socket's kernel buffers take a few MB first; past them, the gateway's own queue fills.
    while (reached === 1 && pushes < 2000) {
      reached = (await pushOk(gateway.url, {}, { to: { users: ['sloth'] }, event: 'big', data })).connections;
      pushes++;
    }
    expect(reached).toBe(0);
    expect(pushes).toBeLessThan(2000);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
    await hubHolds(gateway, {});
    socket.resume();
    const chunks: Buffer[] = [];
    for await (const chunk of socket as AsyncIterable<Buffer>) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString('utf8');
    expect(text.startsWith('HTTP/1.1 200 OK')).toBe(true);
    expect(text).toMatch(/event: error\ndata: \{"code":"client_too_slow",[^\n]*\}\n\n$/);
  });
  /** The body of a chunked HTTP/1.1 response, its chunk framing removed (throws on a bad frame). */
  function unchunk(raw: Buffer): string {
    let at = raw.indexOf('\r\n\r\n') + 4;
    const parts: Buffer[] = [];
    while (at < raw.length) {
      const lineEnd = raw.indexOf('\r\n', at);
      if (lineEnd === -1) throw new Error('a chunk size line without its end');
      const size = Number.parseInt(raw.subarray(at, lineEnd).toString('latin1'), 16);
      if (Number.isNaN(size)) throw new Error(`a bad chunk size at ${at.toString()}`);
      if (size === 0) break;
      parts.push(raw.subarray(lineEnd + 2, lineEnd + 2 + size));
      if (raw.subarray(lineEnd + 2 + size, lineEnd + 4 + size).toString('latin1') !== '\r\n') throw new Error('a chunk without its CRLF');
      at = lineEnd + 4 + size;
    }
    return Buffer.concat(parts).toString('utf8');
  }

  /** A paused HTTP/1.1 reader of `userId`'s channel, and the gateway's response to it. */
  async function pausedReader(userId: string): Promise<{ socket: Socket; response: ServerResponse }> {
    const responses: ServerResponse[] = [];
    const onRequest = (request: IncomingMessage, response: ServerResponse): void => {
      if (request.headers['x-sluice-user'] === userId) responses.push(response);
    };
    gateway.app.server.on('request', onRequest);
    const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1');
    sockets.add(socket);
    socket.pause();
    socket.write(`GET /api/events HTTP/1.1\r\nhost: 127.0.0.1\r\nx-sluice-user: ${userId}\r\n\r\n`);
    await hubHolds(gateway, { [userId]: 1 });
    gateway.app.server.off('request', onRequest);
    const [response] = responses;
    if (!response) throw new Error('no response seen');
    return { socket, response };
  }

  it('holds pushes for a chunked HTTP/1.1 reader whose socket is full, and sends them whole and in order when it reads again', { timeout: 60_000 }, async () => {
    const { socket, response } = await pausedReader('tortoise');
    const sent: string[] = [];
    const push = async (): Promise<void> => {
      const data = `${sent.length.toString()}:${'t'.repeat(8000)}`;
      sent.push(data);
      expect((await pushOk(gateway.url, {}, { to: { users: ['tortoise'] }, event: 'piece', data })).connections).toBe(1);
    };
    // Until the socket itself refuses more (the kernel's buffers are full), then a few more that
    // wait in the channel's queue, well under maxBufferedBytes.
    while (!(response.socket?.writableNeedDrain ?? false) && sent.length < 4000) await push();
    expect(response.socket?.writableNeedDrain).toBe(true);
    for (let index = 0; index < 4; index++) await push();
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.resume();
    const last = JSON.stringify(sent.at(-1));
    await waitFor(() => Buffer.concat(chunks).includes(last), 'every push to arrive', 10_000);
    socket.destroy();
    const events: string[] = [];
    const parser = createParser({ onEvent: (event) => events.push(event.data) });
    parser.feed(unchunk(Buffer.concat(chunks)));
    expect(events).toEqual(sent.map((data) => JSON.stringify(data)));
  });

  it('cuts off a chunked HTTP/1.1 reader that stops reading, with client_too_slow', { timeout: 60_000 }, async () => {
    const { socket } = await pausedReader('snail');
    let pushes = 0;
    let reached = 1;
    while (reached === 1 && pushes < 2000) {
      reached = (await pushOk(gateway.url, {}, { to: { users: ['snail'] }, event: 'big', data: 'z'.repeat(60_000) })).connections;
      pushes++;
    }
    expect(reached).toBe(0);
    expect(pushes).toBeLessThan(2000);
    await hubHolds(gateway, {});
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.resume();
    await waitFor(() => Buffer.concat(chunks).includes('client_too_slow'), 'the error event', 10_000);
    await waitFor(() => Buffer.concat(chunks).subarray(-5).toString('latin1') === '0\r\n\r\n', 'the last chunk', 5000);
    expect(unchunk(Buffer.concat(chunks))).toMatch(/event: error\ndata: \{"code":"client_too_slow",[^\n]*\}\n\n$/);
  });
});

describe('many idle connections', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway({ server: { heartbeatMs: 500 }, log: { level: 'warn' } });
  });
  afterAll(async () => {
    await gateway?.close();
  });

  it('holds 5000 idle SSE connections with heartbeats, and a broadcast reaches every one', { timeout: 30_000 }, async () => {
    const count = 5000;
    const port = Number(new URL(gateway.url).port);
    const received: string[] = Array.from({ length: count }, () => '');
    let closedEarly = 0;
    const open = (index: number): Promise<void> =>
      new Promise((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        sockets.add(socket);
        socket.setEncoding('utf8');
        socket.once('error', reject);
        socket.on('close', () => closedEarly++);
        socket.on('data', (text: string) => {
          // Keep only a short tail: a heartbeat or event may be split across reads.
          const before = received[index] ?? '';
          if (before === '') resolve();
          received[index] = (before.length > 4096 ? before.slice(-512) : before) + text;
        });
        socket.write(`GET /api/events HTTP/1.1\r\nhost: 127.0.0.1\r\nx-sluice-user: user-${(index % 500).toString()}\r\n\r\n`);
      });
    // In batches, so the listen backlog never overflows.
    for (let start = 0; start < count; start += 250) await Promise.all(Array.from({ length: Math.min(250, count - start) }, (_, offset) => open(start + offset)));
    await hubHolds(gateway, Object.fromEntries(Array.from({ length: 500 }, (_, index) => [`user-${index.toString()}`, count / 500])));
    expect(received.every((text) => text.startsWith('HTTP/1.1 200 OK'))).toBe(true);

    const heartbeatsSeen = new Set<number>();
    const wasBeating = (index: number): boolean => heartbeatsSeen.has(index) || ((received[index] ?? '').includes(': ping\n') && heartbeatsSeen.add(index).size > 0);
    await waitFor(() => received.every((_text, index) => wasBeating(index)), 'a heartbeat on every connection', 5000);

    const result = await pushOk(gateway.url, {}, { to: { all: true }, event: 'final', data: { ok: true } });
    expect(result.connections).toBe(count);
    const marker = `event: final\nid: ${result.id}\ndata: {"ok":true}\n\n`;
    await waitFor(() => received.every((text) => text.includes(marker)), 'the broadcast on every connection', 10_000);
    expect(closedEarly).toBe(0);
    expect((await gateway.app.hub.counts()).total).toBe(count);

    for (const socket of sockets) socket.destroy();
    sockets.clear();
    await hubHolds(gateway, {});
  });
});

describe('heartbeats and the head', () => {
  let gateway: TestGateway;
  /** What the next replay does, after waiting longer than several heartbeats. */
  let replayOutcome: 'fails' | 'succeeds' = 'succeeds';
  beforeAll(async () => {
    const inner = createMemoryHub({ now: Date.now });
    const hub: Hub = {
      ...inner,
      replay: async (userId, lastEventId) => {
        await new Promise((resolve) => setTimeout(resolve, 250));
        if (replayOutcome === 'fails') throw new Error('storage down');
        return inner.replay(userId, lastEventId);
      },
    };
    gateway = await startGateway({ server: { heartbeatMs: 30 } }, {}, { hub });
  });
  afterAll(async () => {
    await gateway?.close();
  });

  it('sends no heartbeat before the head: a replay that fails after several heartbeats is still an HTTP error, with its request id', async () => {
    replayOutcome = 'fails';
    const client = await openEvents(gateway.url, { headers: { 'last-event-id': '1', 'x-request-id': 'replay-fails-1' } });
    expect(client.response.status).toBe(500);
    expect(client.response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(client.response.headers.get('x-request-id')).toBe('replay-fails-1');
    expect((await errorOf(client.response)).code).toBe('internal_error');
    await hubHolds(gateway, {});
  });

  it('sends the head with the replay, after several heartbeats were due, and heartbeats only after it', async () => {
    replayOutcome = 'succeeds';
    const seen = await pushOk(gateway.url, {}, { to: { users: ['erin'] }, event: 'seen', data: 0 });
    const missed = await pushOk(gateway.url, {}, { to: { users: ['erin'] }, event: 'missed', data: 1 });
    const stream = await openStream(gateway.url, { 'x-sluice-user': 'erin', 'last-event-id': seen.id, 'x-request-id': 'replay-waits-1' });
    expect(stream.response.headers.get('x-request-id')).toBe('replay-waits-1');
    await waitFor(() => stream.raw().includes(': ping\n'), 'a heartbeat after the replay', 3000);
    expect(stream.raw().startsWith(`event: missed\nid: ${missed.id}\ndata: 1\n\n`)).toBe(true);
    stream.abort();
    await hubHolds(gateway, {});
  });
  it('writes x-request-id in the head itself, so node:http keeps no header map for the stream; errors before it still carry the id', async () => {
    const responses: ServerResponse[] = [];
    const capture = (_request: IncomingMessage, response: ServerResponse): void => void responses.push(response);
    gateway.app.server.on('request', capture);
    try {
      const stream = await openStream(gateway.url, { 'x-sluice-user': 'frank', 'x-request-id': 'head-only-1' });
      expect(stream.response.headers.get('x-request-id')).toBe('head-only-1');
      expect(responses).toHaveLength(1);
      // Headers set ahead with setHeader would stay listed here for as long as the stream is open.
      expect(responses[0]?.getHeaderNames()).toEqual([]);
      stream.abort();
      await hubHolds(gateway, {});
      const refused = await openEvents(gateway.url, { headers: { 'last-event-id': 'nope', 'x-request-id': 'head-only-2' } });
      expect(refused.response.status).toBe(400);
      expect(refused.response.headers.get('x-request-id')).toBe('head-only-2');
      const missing = await fetch(`${gateway.url}/api/no-such-route`, { headers: { 'x-request-id': 'head-only-3' } });
      expect(missing.status).toBe(404);
      expect(missing.headers.get('x-request-id')).toBe('head-only-3');
    } finally {
      gateway.app.server.off('request', capture);
    }
  });

  it("lets go of the request's headers once the stream is open, so its cookies and credentials do not stay as long as it does", async () => {
    const requests: IncomingMessage[] = [];
    const capture = (request: IncomingMessage): void => void requests.push(request);
    gateway.app.server.on('request', capture);
    try {
      const stream = await openStream(gateway.url, { 'x-sluice-user': 'grace', 'x-request-id': 'headers-go-1', cookie: 'session=a-secret-session' });
      await hubHolds(gateway, { grace: 1 });
      const [request] = requests;
      expect(request?.rawHeaders).toEqual([]);
      expect(request?.headers).toEqual({});
      // The stream works on: a push arrives, and closing it writes the request's log line.
      const pushed = await pushOk(gateway.url, {}, { to: { users: ['grace'] }, event: 'after', data: 1 });
      await waitFor(() => stream.events.some((event) => event.id === pushed.id), 'the push', 3000);
      stream.abort();
      await hubHolds(gateway, {});
      await waitFor(() => gateway.logs.some((line) => line.includes('"requestId":"headers-go-1"')), 'the log line', 3000);
      const line = JSON.parse(gateway.logs.find((text) => text.includes('"requestId":"headers-go-1"')) ?? '{}') as Record<string, unknown>;
      expect(line).toMatchObject({ method: 'GET', route: '/api/events', status: 200, userId: 'grace' });
    } finally {
      gateway.app.server.off('request', capture);
    }
  });
});

describe('timers shared by all hub streams', () => {
  let gateway: TestGateway;
  // Delays no other timer of the process has, to tell the streams' timers apart.
  const heartbeatMs = 37;
  const maxConnectionAgeMs = 3_600_000;
  beforeAll(async () => {
    gateway = await startGateway({ server: { heartbeatMs }, hub: { maxConnectionAgeMs } });
  });
  afterAll(async () => {
    await gateway?.close();
  });

  it('one heartbeat interval and one age timer serve every stream, and none is left once the last one closed, after many came and went', async () => {
    const setInterval = vi.spyOn(globalThis, 'setInterval');
    const clearInterval = vi.spyOn(globalThis, 'clearInterval');
    const setTimeout = vi.spyOn(globalThis, 'setTimeout');
    const clearTimeout = vi.spyOn(globalThis, 'clearTimeout');
    const created = (spy: typeof setInterval | typeof setTimeout, delay: (ms: number) => boolean): NodeJS.Timeout[] =>
      spy.mock.calls.flatMap((call, index) => (delay(Number(call[1])) ? [spy.mock.results[index]?.value as NodeJS.Timeout] : []));
    const cleared = (spy: typeof clearInterval | typeof clearTimeout): unknown[] => spy.mock.calls.map((call) => call[0]);
    try {
      for (let round = 0; round < 10; round++) {
        const streams = await Promise.all(Array.from({ length: 30 }, (_, index) => openStream(gateway.url, { 'x-sluice-user': `cycler-${(index % 3).toString()}` })));
        await hubHolds(gateway, { 'cycler-0': 10, 'cycler-1': 10, 'cycler-2': 10 });
        if (round === 0) {
          await waitFor(() => streams.every((stream) => stream.raw().includes(': ping\n')), 'a heartbeat on every stream', 3000);
          expect(created(setInterval, (ms) => ms === heartbeatMs)).toHaveLength(1);
        }
        for (const stream of streams) stream.abort();
        await hubHolds(gateway, {});
      }
      const heartbeats = created(setInterval, (ms) => ms === heartbeatMs);
      // One per round at most: it stops with the last stream, and starts again with the next.
      expect(heartbeats.length).toBeGreaterThan(0);
      expect(heartbeats.length).toBeLessThanOrEqual(10);
      const ageTimers = created(setTimeout, (ms) => ms > maxConnectionAgeMs * 0.8);
      expect(ageTimers.length).toBeGreaterThan(0);
      for (const timer of [...heartbeats, ...ageTimers]) expect(timer.hasRef()).toBe(false);
      expect(heartbeats.every((timer) => cleared(clearInterval).includes(timer))).toBe(true);
      expect(ageTimers.every((timer) => cleared(clearTimeout).includes(timer))).toBe(true);
    } finally {
      vi.restoreAllMocks();
    }
  });
});

describe('at shutdown', () => {
  it('hub streams end with a close event that says to reconnect, and WebSockets with 1012', async () => {
    const stopping = await startGateway({});
    const stream = await openStream(stopping.url, {});
    const { default: WebSocket } = await import('ws');
    const socket = new WebSocket(`${stopping.url.replace('http', 'ws')}/api/ws`);
    await new Promise((resolve) => socket.once('open', resolve));
    const socketClosed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    await hubHolds(stopping, { anonymous: 2 });
    await stopping.close();
    await waitFor(() => stream.events.some((event) => event.event === 'close'), 'the close event');
    expect(JSON.parse(stream.events.find((event) => event.event === 'close')?.data ?? '{}')).toMatchObject({ reason: 'shutting_down', reconnect: true });
    expect(await socketClosed).toBe(1012);
  });
});
