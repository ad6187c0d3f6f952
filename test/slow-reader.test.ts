// A client that stops reading cannot make the gateway buffer without bound: once more than
// server.maxBufferedBytes of the answer wait unsent, its stream ends with client_too_slow and the
// upstream call is cancelled, whether the upstream sends big deltas or token-sized ones. A client
// that is slow but keeps its backlog under the cap gets every byte, even while its socket is full.
import { connect, type Socket } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Generation } from '../src/relay/generation.js';
import { startMockOpenAi, sleep, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, openAiConfig, type TestGateway } from './support/gateway.js';
import { chatBody, parseOpenAiStream } from './support/chat-client.js';
import { contentEvent, drained, finishEvents, openStream, roleEvent } from './support/upstream-chunks.js';
import { waitFor, within } from './support/wait.js';

const maxBufferedBytes = 256 * 1024;

let upstream: MockOpenAi;
let gateway: TestGateway;
/** The gateway's response to the latest chat request, to see whether its socket is full. */
let gatewayResponse: ServerResponse | undefined;
const clients = new Set<Socket>();

beforeAll(async () => {
  upstream = await startMockOpenAi();
  gateway = await startGateway(openAiConfig(upstream.baseUrl, upstream.apiKey, { server: { maxBufferedBytes } }));
  gateway.app.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (request.url === '/v1/chat/completions') gatewayResponse = response;
  });
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});
beforeEach(() => {
  upstream.reset();
  gatewayResponse = undefined;
});
afterEach(() => {
  for (const client of clients) client.destroy();
  clients.clear();
});

/** Sends a streaming chat over a raw socket that reads nothing until told to. */
function rawChat(httpVersion: '1.0' | '1.1'): Socket {
  const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1');
  clients.add(socket);
  socket.pause();
  const body = chatBody({ model: 'gpt-test' });
  socket.write(`POST /v1/chat/completions HTTP/${httpVersion}\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body).toString()}\r\n\r\n${body}`);
  return socket;
}

/** Reads the socket to its end, `pauseMs` after every read; returns the HTTP/1.0 response body. */
async function readToEnd(socket: Socket, pauseMs: number): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of socket as AsyncIterable<Buffer>) {
    parts.push(chunk);
    if (pauseMs > 0) await sleep(pauseMs);
  }
  const text = Buffer.concat(parts).toString('utf8');
  const headEnd = text.indexOf('\r\n\r\n');
  expect(text.slice(0, text.indexOf('\r\n'))).toBe('HTTP/1.1 200 OK');
  return text.slice(headEnd + 4);
}

/** Sends `events` (whole SSE events) in writes of about 64 KiB, honouring backpressure. */
async function sendInBatches(response: ServerResponse, events: Iterable<string>): Promise<void> {
  let batch = '';
  for (const event of events) {
    batch += event;
    if (batch.length < 64 * 1024) continue;
    if (response.destroyed) return;
    response.write(batch);
    batch = '';
    await drained(response);
  }
  if (batch !== '' && !response.destroyed) response.write(batch);
}

/** The generation serving the one request in flight, once the upstream has it. */
async function runningGeneration(): Promise<Generation> {
  await waitFor(() => upstream.requests.length === 1 && gateway.app.generations.active.size === 1, 'the upstream request');
  return [...gateway.app.generations.active][0]!;
}

/** The text deltas the gateway has taken from the upstream, sent to the client or not. */
function takenFromUpstream(generation: Generation): { deltas: number; text: string } {
  let text = '';
  let deltas = 0;
  for (const event of generation.events) {
    if (event.type !== 'text-delta') continue;
    text += event.text;
    deltas++;
  }
  return { deltas, text };
}

function connectionCount(): Promise<number> {
  return new Promise((resolve, reject) => gateway.app.server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}

describe('a client that stops reading', () => {
  it('is cut off: the upstream request closes within seconds, memory stays bounded, client_too_slow', async () => {
    const piece = 'z'.repeat(4096);
    upstream.handlers.push(async (_request, response) => {
      openStream(response);
      // About 80 MB if nobody stopped it.
      await sendInBatches(response, (function* () {
        for (let index = 0; index < 20_000; index++) yield contentEvent(piece);
      })());
      if (!response.destroyed) response.end(finishEvents);
      return true;
    });
    const connectionsBefore = await connectionCount();
    const heapBefore = process.memoryUsage().heapUsed;
    let heapPeak = heapBefore;
    const sampler = setInterval(() => (heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed)), 5);
    try {
      rawChat('1.1');
      const generation = await runningGeneration();
      await within(upstream.requests[0]!.closed, 5000, 'the upstream request to close');

      const summary = await within(generation.done, 1000, 'the generation to end');
      expect(summary.errorCode).toBe('client_too_slow');
      // What the kernel's socket buffers hold plus the cap: megabytes, not the whole 80 MB.
      expect(takenFromUpstream(generation).text.length).toBeLessThan(32 * 1024 * 1024);
      expect(heapPeak - heapBefore).toBeLessThan(64 * 1024 * 1024);
      // The gateway drops the connection of a client that reads nothing, and logs why.
      const connectionsAfter = await within(
        (async () => {
          await waitFor(() => gateway.logs.join('').includes('"errorCode":"client_too_slow"'), 'the request log line', 3000);
          for (;;) {
            const count = await connectionCount();
            if (count <= connectionsBefore) return count;
            await sleep(20);
          }
        })(),
        3000,
        'the gateway to drop the connection',
      );
      expect(connectionsAfter).toBe(connectionsBefore);
    } finally {
      clearInterval(sampler);
    }
  });

  it('is cut off just the same when the upstream sends token-sized deltas; the client sees client_too_slow', async () => {
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    upstream.handlers.push(async (_request, response) => {
      openStream(response);
      response.write(roleEvent);
      // 100,000 one-letter deltas a second (far faster than any model) for up to 20 s.
      for (let index = 0; index < 2_000_000 && !response.destroyed; index += 500) {
        await sendInBatches(response, Array.from({ length: 500 }, (_, offset) => contentEvent(letters[(index + offset) % letters.length]!)));
        await sleep(5);
      }
      if (!response.destroyed) response.end(finishEvents);
      return true;
    });
    const socket = rawChat('1.0');
    const generation = await runningGeneration();
    await within(upstream.requests[0]!.closed, 5000, 'the upstream request to close');

    // Read what the gateway had sent (it still ends the stream in-band before dropping the socket).
    const stream = parseOpenAiStream(await within(readToEnd(socket, 0), 3000, 'the response to end'));
    expect(stream.errorCode).toBe('client_too_slow');
    expect(stream.done).toBe(false);
    expect(stream.afterEnd).toBe(0);
    const taken = takenFromUpstream(generation);
    expect(taken.text.startsWith(stream.content)).toBe(true);

    // What the gateway held back unsent when it gave up, in the bytes it would have written.
    const deltaEventBytes = `data: ${stream.payloads.find((payload) => payload.includes('"content":"b"'))!}\n\n`.length;
    const unsentBytes = (taken.deltas - [...stream.content].length) * deltaEventBytes;
    expect(unsentBytes).toBeLessThan(4 * maxBufferedBytes);
  });
});

describe('a client that is slow but keeps reading', () => {
  it('gets the full, exact answer, even after its socket was full', async () => {
    const sent: string[] = [];
    const piece = (index: number) => `${index.toString(36)}|`.repeat(2000).slice(0, 8000);
    let upstreamDone!: () => void;
    const upstreamFinished = new Promise<void>((resolve) => (upstreamDone = resolve));
    const isGatewaySocketFull = async () => {
      if ((gatewayResponse?.writableLength ?? 0) === 0) return false;
      await sleep(20);
      return (gatewayResponse?.writableLength ?? 0) > 0;
    };
    upstream.handlers.push(async (_request, response) => {
      openStream(response);
      response.write(roleEvent);
      const send = async (count: number) => {
        const events: string[] = [];
        for (let index = 0; index < count; index++) {
          const text = piece(sent.length);
          sent.push(text);
          events.push(contentEvent(text));
        }
        await sendInBatches(response, events);
      };
      // Fill the kernel's buffers towards the client (it is not reading yet) until the gateway's
      // own socket buffer stays full: its writes are now really waiting for the client.
      while (!(await isGatewaySocketFull()) && sent.length < 4000) {
        await send(2);
        await sleep(1);
      }
      // Then a quarter of the cap more, piece by piece: once the gateway's socket refuses more,
      // it has to hold these in its log, unsent, and judge whether that is too much.
      for (let count = 0; count < Math.floor(maxBufferedBytes / 4 / 8000); count++) {
        await send(1);
        await sleep(5);
      }
      response.end(finishEvents);
      upstreamDone();
      return true;
    });
    const socket = rawChat('1.0');
    const generation = await runningGeneration();
    await within(upstreamFinished, 8000, 'the upstream to send everything');
    await within(generation.done, 1000, 'the generation to finish');
    // The whole answer is in the gateway's log, yet its end has not been written: the relay is
    // waiting for the client, with part of the answer held back.
    expect(gatewayResponse?.writableNeedDrain).toBe(true);
    expect(gatewayResponse?.writableEnded).toBe(false);

    const stream = parseOpenAiStream(await within(readToEnd(socket, 3), 10_000, 'the response to end'));
    expect(stream.errorCode).toBeUndefined();
    expect(stream.done).toBe(true);
    expect(stream.content.length).toBeGreaterThan(4 * maxBufferedBytes);
    expect(stream.content).toBe(sent.join(''));
  });
});
