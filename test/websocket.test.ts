// GET /api/ws as a client uses it: several chats multiplexed on one socket, each getting exactly
// its own answer; cancel; resume on a new socket after a drop; hub pushes and admin disconnects
// reaching WebSocket connections; malformed frames answered with error frames on a socket that
// stays open; credentials by header or single-use ticket; dead peers dropped by ping/pong.
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { demoAnswer } from '../src/providers/mock/answer.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startMockOpenAi, type MockOpenAi } from './support/mock-openai.js';
import { cancelWithinMs, waitFor, within } from './support/wait.js';

interface Frame {
  type: string;
  id?: string;
  eventId?: string;
  code?: string;
  param?: string;
  message?: string;
  event?: string;
  finished?: boolean;
  data?: Record<string, unknown>;
}

/** A connected client that records every frame it receives. */
interface Client {
  socket: WebSocket;
  frames: Frame[];
  send(frame: unknown): void;
  /** Resolves with the first recorded (or future) frame matching `match`. */
  next(match: (frame: Frame) => boolean, what: string, timeoutMs?: number): Promise<Frame>;
  /** The text of chat `id`'s deltas so far. */
  text(id: string): string;
  closed: Promise<{ code: number; reason: string }>;
}

let gateway: TestGateway;
let upstream: MockOpenAi;
let aliceKey: string;
let bobKey: string;
let adminKey: string;
const sockets = new Set<WebSocket>();

beforeAll(async () => {
  upstream = await startMockOpenAi();
  gateway = await startGateway({
    auth: { mode: 'keys' },
    providers: { demo: { type: 'mock', chunkCount: 40, delayMs: 5 }, upstream: { type: 'openai', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey } },
    models: { demo: { provider: 'demo', model: 'sluice-demo' }, slow: { provider: 'upstream', model: 'gpt-4o-mini' } },
    defaultModel: 'demo',
    websocket: { pingIntervalMs: 200 },
    generations: { resumeGraceMs: 2000 },
  });
  aliceKey = (await gateway.app.keys.create({ userId: 'alice', role: 'user' })).key;
  bobKey = (await gateway.app.keys.create({ userId: 'bob', role: 'user' })).key;
  adminKey = (await gateway.app.keys.create({ userId: 'ops', role: 'admin' })).key;
});
afterEach(() => {
  for (const socket of sockets) socket.terminate();
  sockets.clear();
  upstream.reset();
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});

function wsUrl(query = ''): string {
  return `${gateway.url.replace('http', 'ws')}/api/ws${query}`;
}

async function connect(options: { key?: string; query?: string } = {}): Promise<Client> {
  const socket = new WebSocket(wsUrl(options.query), options.key !== undefined ? { headers: { authorization: `Bearer ${options.key}` } } : {});
  sockets.add(socket);
  const frames: Frame[] = [];
  const waiters: { match: (frame: Frame) => boolean; resolve: (frame: Frame) => void }[] = [];
  socket.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString('utf8')) as Frame;
    frames.push(frame);
    for (const waiter of [...waiters]) {
      if (waiter.match(frame)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(frame);
      }
    }
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await within(new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('unexpected-response', (_request, response) => reject(new Error(`upgrade refused: ${String(response.statusCode)}`)));
    socket.once('error', reject);
  }), 5000, 'the WebSocket to open');
  return {
    socket,
    frames,
    closed,
    send: (frame) => socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    next(match, what, timeoutMs = 5000) {
      const found = frames.find(match);
      if (found) return Promise.resolve(found);
      return within(new Promise<Frame>((resolve) => waiters.push({ match, resolve })), timeoutMs, what);
    },
    text: (id) => frames.filter((frame) => frame.id === id && frame.type === 'delta').map((frame) => (typeof frame.data?.['text'] === 'string' ? frame.data['text'] : '')).join(''),
  };
}

/** The HTTP status with which an upgrade was refused. */
function refusedStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return within(new Promise<number>((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.once('open', () => reject(new Error('the upgrade was accepted')));
    socket.once('error', () => undefined);
  }), 5000, 'the upgrade answer');
}

async function ticketFor(key: string): Promise<string> {
  const response = await fetch(`${gateway.url}/api/tickets`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });
  return ((await response.json()) as { ticket: string }).ticket;
}

describe('credentials', () => {
  it('Authorization works; a ticket works once; nothing at all is a 401', async () => {
    const byHeader = await connect({ key: aliceKey });
    byHeader.send({ type: 'ping' });
    await byHeader.next((frame) => frame.type === 'pong', 'pong');
    const ticket = await ticketFor(aliceKey);
    await connect({ query: `?ticket=${ticket}` });
    expect(await refusedStatus(wsUrl(`?ticket=${ticket}`))).toBe(401);
    expect(await refusedStatus(wsUrl())).toBe(401);
    expect(await refusedStatus(`${gateway.url.replace('http', 'ws')}/api/nowhere`, { authorization: `Bearer ${aliceKey}` })).toBe(404);
  });
});

describe('chats on one socket', () => {
  it('run at once, each tagged with its own id and getting exactly its own answer', async () => {
    const client = await connect({ key: aliceKey });
    const questions = ['first question', '第二个问题', 'third 🙂'];
    questions.forEach((message, index) => client.send({ type: 'chat', id: `c${index.toString()}`, message }));
    for (const index of questions.keys()) await client.next((frame) => frame.id === `c${index.toString()}` && frame.type === 'done', `chat c${index.toString()} to finish`);
    questions.forEach((question, index) => expect(client.text(`c${index.toString()}`)).toBe(demoAnswer(question)));
    // They really ran at the same time: their deltas interleave.
    const order = client.frames.filter((frame) => frame.type === 'delta').map((frame) => frame.id);
    expect(order.indexOf('c2')).toBeLessThan(order.lastIndexOf('c0'));
    const meta = client.frames.find((frame) => frame.id === 'c1' && frame.type === 'meta');
    expect(meta?.data).toMatchObject({ model: 'demo', userId: 'alice' });
    expect(meta?.eventId).toMatch(/^[A-Za-z0-9_-]+:0$/);
  });

  it('cancel stops one chat; the other completes', async () => {
    const client = await connect({ key: aliceKey });
    client.send({ type: 'chat', id: 'keep', message: 'keep going' });
    client.send({ type: 'chat', id: 'stop', message: 'stop me' });
    await client.next((frame) => frame.id === 'stop' && frame.type === 'delta', 'a first delta of the chat to cancel');
    client.send({ type: 'cancel', id: 'stop' });
    await client.next((frame) => frame.id === 'stop' && frame.type === 'error', 'the cancelled chat to end');
    expect(client.frames.find((frame) => frame.id === 'stop' && frame.type === 'error')?.data).toMatchObject({ code: 'cancelled' });
    await client.next((frame) => frame.id === 'keep' && frame.type === 'done', 'the other chat to finish');
    expect(client.text('keep')).toBe(demoAnswer('keep going'));
  });

  it('resumes on a new socket after a drop, with nothing lost or repeated', async () => {
    const first = await connect({ key: aliceKey });
    first.send({ type: 'chat', id: 'a', message: 'resume me' });
    await waitFor(() => first.frames.filter((frame) => frame.type === 'delta').length >= 5, 'five deltas');
    first.socket.terminate();
    const seen = first.text('a');
    const lastEventId = first.frames.filter((frame) => frame.eventId !== undefined).at(-1)?.eventId ?? '';
    const second = await connect({ key: aliceKey });
    second.send({ type: 'resume', id: 'a2', lastEventId });
    await second.next((frame) => frame.type === 'resumed', 'the resume to be accepted');
    await second.next((frame) => frame.id === 'a2' && frame.type === 'done', 'the resumed chat to finish');
    expect(seen + second.text('a2')).toBe(demoAnswer('resume me'));
    // Bob cannot resume Alice's generation.
    const bob = await connect({ key: bobKey });
    bob.send({ type: 'resume', id: 'x', lastEventId });
    expect(await bob.next((frame) => frame.type === 'error', 'an error frame')).toMatchObject({ id: 'x', code: 'forbidden' });
  });

  it('with cancelChatsOnClose, closing the socket cancels its chats upstream within a second', async () => {
    const strict = await startGateway({
      providers: { upstream: { type: 'openai', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey } },
      models: { slow: { provider: 'upstream', model: 'gpt-4o-mini' } },
      websocket: { cancelChatsOnClose: true },
    });
    try {
      // 100 pieces 30 ms apart: about 3 s if nothing stopped it.
      upstream.plan = { pieces: Array.from({ length: 100 }, (_, index) => `w${index.toString()} `), delayMs: 30 };
      const socket = new WebSocket(`${strict.url.replace('http', 'ws')}/api/ws`);
      sockets.add(socket);
      await new Promise((resolve) => socket.once('open', resolve));
      socket.send(JSON.stringify({ type: 'chat', id: 'c', message: 'hi', model: 'slow' }));
      await new Promise((resolve) => socket.once('message', resolve));
      await waitFor(() => upstream.requests.length === 1, 'the upstream request');
      const closedAt = performance.now();
      socket.close();
      const upstreamClosedAt = await within(upstream.requests[0]!.closed, cancelWithinMs + 1000, 'the upstream request to close');
      expect(upstreamClosedAt - closedAt).toBeLessThan(cancelWithinMs);
    } finally {
      await strict.close();
    }
  });
});

describe('malformed frames get an error frame naming the problem, and the socket stays open', () => {
  it.each([
    ['not JSON', '{"type":', undefined, /not valid JSON/],
    ['not an object', '[1,2]', undefined, /JSON object/],
    ['an unknown type', { type: 'dance' }, 'type', /chat, cancel, resume, ping/],
    ['a chat without id', { type: 'chat', message: 'x' }, 'id', /required/],
    ['a chat with neither message nor messages', { type: 'chat', id: 'c' }, 'message', /exactly one of message and messages/],
    ['an unknown field', { type: 'ping', colour: 'red' }, 'colour', /not a known field/],
    ['a cancel for no chat', { type: 'cancel', id: 'nothing' }, 'id', /no running chat/],
    ['a resume with a bad id', { type: 'resume', id: 'r', lastEventId: 'nope' }, 'lastEventId', /event id/],
  ])('%s', async (_name, frame, param, message) => {
    const client = await connect({ key: aliceKey });
    client.send(frame);
    const error = await client.next((received) => received.type === 'error', 'an error frame');
    expect(error.code).toBe('invalid_frame');
    expect(error.param).toBe(param);
    expect(error.message).toMatch(message);
    client.send({ type: 'ping' });
    await client.next((received) => received.type === 'pong', 'a pong after the bad frame');
  });

  it('a binary frame, and a chat id used twice at once', async () => {
    const client = await connect({ key: aliceKey });
    client.socket.send(Buffer.from([1, 2, 3]));
    expect((await client.next((frame) => frame.type === 'error', 'an error frame')).message).toMatch(/binary/);
    client.send({ type: 'chat', id: 'dup', message: 'one' });
    client.send({ type: 'chat', id: 'dup', message: 'two' });
    const error = await client.next((frame) => frame.type === 'error' && frame.param === 'id', 'the duplicate id error');
    expect(error).toMatchObject({ id: 'dup', code: 'invalid_frame' });
    await client.next((frame) => frame.id === 'dup' && frame.type === 'done', 'the first chat to finish');
    expect(client.text('dup')).toBe(demoAnswer('one'));
  });
});

describe('the hub over WebSocket', () => {
  it('pushes reach WebSocket and SSE connections alike, and are counted', async () => {
    const alice = await connect({ key: aliceKey });
    const bob = await connect({ key: bobKey });
    const sse = await fetch(`${gateway.url}/api/events`, { headers: { authorization: `Bearer ${aliceKey}` } });
    const push = await fetch(`${gateway.url}/api/push`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: { users: ['alice'] }, event: 'notice', data: { text: '你好 alice' } }),
    });
    expect(await push.json()).toMatchObject({ connections: 2 });
    expect(await alice.next((frame) => frame.type === 'push', 'the push')).toMatchObject({ event: 'notice', data: { text: '你好 alice' } });
    const reader = (sse.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while (!text.includes('你好 alice')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(bob.frames.some((frame) => frame.type === 'push')).toBe(false);
    const listed = (await (await fetch(`${gateway.url}/api/connections`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as { data: { userId: string; transport: string }[] };
    expect(listed.data.filter((connection) => connection.transport === 'ws').map((connection) => connection.userId).sort()).toEqual(['alice', 'bob']);
  });

  it('a push reaches every socket of a user as a text frame, byte for byte, multi-byte text included', async () => {
    // One encoded Buffer is sent to every socket (decision 0028): each must still get a text frame
    // (not binary) holding exactly the UTF-8 of the frame's JSON: CJK, an emoji (a surrogate pair
    // in JavaScript), a lone combining mark and a combining sequence.
    const clients = await Promise.all([connect({ key: aliceKey }), connect({ key: aliceKey }), connect({ key: aliceKey })]);
    const received = clients.map((client) => {
      const messages: { data: Buffer; isBinary: boolean }[] = [];
      client.socket.on('message', (data: Buffer, isBinary: boolean) => messages.push({ data, isBinary }));
      return messages;
    });
    const data = { text: '\u0301 你好, 世界 🙂👍🏽 e\u0301', list: ['é', '𝄞'] };
    const response = await fetch(`${gateway.url}/api/push`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: { users: ['alice'] }, event: 'notice', data }),
    });
    const pushed = (await response.json()) as { id: string; connections: number };
    expect(pushed.connections).toBe(3);
    await waitFor(() => received.every((messages) => messages.length === 1), 'the push on all three sockets');
    const expected = Buffer.from(JSON.stringify({ type: 'push', eventId: pushed.id, event: 'notice', data }), 'utf8');
    for (const messages of received) {
      expect(messages[0]?.isBinary).toBe(false);
      expect(messages[0]?.data).toEqual(expected);
    }
  });

  it('a socket opened with ?lastEventId= first gets the pushes it missed, in order, then live ones', async () => {
    const pushTo = (text: string) =>
      fetch(`${gateway.url}/api/push`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ to: { users: ['bob'] }, event: 'note', data: { text } }) }).then(async (response) => (await response.json()) as { id: string });
    const seen = await pushTo('seen');
    await pushTo('missed 1');
    await pushTo('missed 2');
    const client = await connect({ key: bobKey, query: `?lastEventId=${seen.id}` });
    await pushTo('live');
    await waitFor(() => client.frames.filter((frame) => frame.type === 'push').length === 3, 'three pushes');
    expect(client.frames.filter((frame) => frame.type === 'push').map((frame) => frame.data?.['text'])).toEqual(['missed 1', 'missed 2', 'live']);
    expect(await refusedStatus(wsUrl('?lastEventId=abc'), { authorization: `Bearer ${bobKey}` })).toBe(400);
  });

  it('DELETE /api/connections/:userId closes that user\'s sockets and no one else\'s', async () => {
    const alice = await connect({ key: aliceKey });
    const bob = await connect({ key: bobKey });
    const response = await fetch(`${gateway.url}/api/connections/alice`, { method: 'DELETE', headers: { authorization: `Bearer ${adminKey}` } });
    expect(await response.json()).toMatchObject({ userId: 'alice', closed: 1 });
    expect((await within(alice.closed, 2000, 'alice\'s socket to close')).code).toBe(4000);
    bob.send({ type: 'ping' });
    await bob.next((frame) => frame.type === 'pong', 'bob still connected');
  });

  it('a peer that stops answering pings is dropped', async () => {
    const client = await connect({ key: bobKey });
    const before = (await gateway.app.hub.counts()).byUser['bob'] ?? 0;
    // Stop reading: the client's WebSocket never sees the server's pings, so it never answers.
    (client.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    let after = before;
    for (let attempt = 0; attempt < 100 && after >= before; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      after = (await gateway.app.hub.counts()).byUser['bob'] ?? 0;
    }
    expect(after).toBe(before - 1);
  });
});
