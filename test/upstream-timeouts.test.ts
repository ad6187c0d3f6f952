// Each upstream timeout fires with its own error code, at about its configured time, and closes
// the upstream connection: connect and first byte (nothing sent yet: a 504 status), idle and total
// (mid-answer: the deltas so far, then an in-band error chunk). Slow-but-steady answers inside
// the limits are left alone.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockOpenAi, sleep, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { postChat, readErrorAnswer, readStream, readTimedPayloads, parseOpenAiStream } from './support/chat-client.js';
import { contentEvent, openStream, roleEvent } from './support/upstream-chunks.js';
import { startSilentServer, type SilentServer } from './support/tcp.js';
import { cancelWithinMs, waitFor, within } from './support/wait.js';

const connectMs = 150;
const firstByteMs = 250;
const idleMs = 300;
const totalMs = 400;

let upstream: MockOpenAi;
let silent: SilentServer;
let gateway: TestGateway;

beforeAll(async () => {
  upstream = await startMockOpenAi();
  silent = await startSilentServer();
  const provider = (timeouts: Record<string, number>) => ({ type: 'openai', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey, timeouts });
  gateway = await startGateway({
    providers: {
      // TLS to a server that accepts the TCP connection and never answers the handshake.
      connect: { type: 'openai', baseUrl: `https://127.0.0.1:${silent.port.toString()}/v1`, apiKey: 'sk-unused', timeouts: { connectMs } },
      firstbyte: provider({ firstByteMs }),
      idle: provider({ idleMs }),
      total: provider({ totalMs }),
    },
  });
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
  await silent?.close();
});
beforeEach(() => upstream.reset());

describe('connect timeout', () => {
  it.each([true, false])('stream %s: 504 upstream_connect_timeout, and the half-open connection is closed', async (stream) => {
    const acceptedBefore = silent.accepted;
    const started = performance.now();
    const answer = await readErrorAnswer(await postChat(gateway.url, { model: 'connect/m', stream }));
    const elapsedMs = performance.now() - started;
    expect(answer).toMatchObject({ status: 504, code: 'upstream_connect_timeout', type: 'timeout_error' });
    expect(answer.contentType).toContain('application/json');
    expect(elapsedMs).toBeGreaterThanOrEqual(connectMs);
    // undici runs connect timeouts on its coarse timer (about half a second of resolution), so the
    // error comes between connectMs and about connectMs + 1 s; the default (10 s) would be far later.
    expect(elapsedMs).toBeLessThan(connectMs + 1500);
    expect(silent.accepted).toBeGreaterThan(acceptedBefore);
    await waitFor(() => silent.closed === silent.accepted, 'the gateway to close its TCP connection to the silent server', 1000);
  });
});

describe('first-byte timeout', () => {
  it('head sent, then nothing: 504 upstream_first_byte_timeout before any byte reached the client, upstream closed', async () => {
    upstream.handlers.push((_request, response) => {
      openStream(response);
      return true;
    });
    const started = performance.now();
    const response = await postChat(gateway.url, { model: 'firstbyte/m' });
    const answeredAt = performance.now();
    const answer = await readErrorAnswer(response);
    expect(answer).toMatchObject({ status: 504, code: 'upstream_first_byte_timeout', type: 'timeout_error' });
    // A status and a JSON body: the SSE head was never sent.
    expect(answer.contentType).toContain('application/json');
    expect(answeredAt - started).toBeGreaterThanOrEqual(firstByteMs);
    expect(answeredAt - started).toBeLessThan(firstByteMs + 700);
    const closedAt = await within(upstream.requests[0]!.closed, cancelWithinMs + 1000, 'the upstream request to close');
    expect(closedAt - answeredAt).toBeLessThan(cancelWithinMs);
  });

  it('the role chunk and keep-alive comments are not the first byte of the answer', async () => {
    upstream.handlers.push(async (_request, response) => {
      openStream(response);
      response.write(roleEvent);
      for (let beat = 0; beat < 40 && !response.destroyed; beat++) {
        response.write(': keep-alive\n\n');
        await sleep(25);
      }
      return true;
    });
    const started = performance.now();
    const answer = await readErrorAnswer(await postChat(gateway.url, { model: 'firstbyte/m' }));
    expect(answer).toMatchObject({ status: 504, code: 'upstream_first_byte_timeout' });
    expect(performance.now() - started).toBeLessThan(firstByteMs + 700);
    await within(upstream.requests[0]!.closed, 1000, 'the upstream request to close');
  });

  it('stops counting at the first token: a slow answer that started in time completes', async () => {
    upstream.plan = { text: 'one two three four five six', chunkCount: 6, delayMs: 100 }; // about 600 ms in all
    const answer = await readStream(await postChat(gateway.url, { model: 'firstbyte/m' }));
    expect(answer.content).toBe('one two three four five six');
    expect(answer.done).toBe(true);
  });
});

describe('idle timeout', () => {
  it('deltas, then a pause: the deltas reach the client, then an in-band upstream_idle_timeout; upstream closed', async () => {
    upstream.handlers.push(async (_request, response) => {
      openStream(response);
      response.write(roleEvent + contentEvent('alpha '));
      await sleep(50);
      response.write(contentEvent('beta'));
      return true; // and then nothing, with the connection open
    });
    const response = await postChat(gateway.url, { model: 'idle/m' });
    expect(response.status).toBe(200);
    const timed = await within(readTimedPayloads(response), 3000, 'the stream to end');
    const parsed = parseOpenAiStream(timed.map(({ payload }) => `data: ${payload}\n`).join(''));
    expect(parsed.content).toBe('alpha beta');
    expect(parsed.errorCode).toBe('upstream_idle_timeout');
    expect(parsed.payloads.at(-1)).toContain('"upstream_idle_timeout"');
    expect(parsed.done).toBe(false);
    expect(parsed.afterEnd).toBe(0);

    // The deltas arrived as they were sent, and the error one idle period after the last of them.
    const lastDeltaAt = timed.findLast(({ payload }) => payload.includes('"content":"beta"'))!.at;
    const errorAt = timed.at(-1)!.at;
    expect(errorAt - lastDeltaAt).toBeGreaterThanOrEqual(idleMs - 20);
    expect(errorAt - lastDeltaAt).toBeLessThan(idleMs + 700);
    const closedAt = await within(upstream.requests[0]!.closed, cancelWithinMs + 1000, 'the upstream request to close');
    expect(closedAt - errorAt).toBeLessThan(cancelWithinMs);
  });

  it('gaps shorter than the idle timeout never trip it, however long the answer takes', async () => {
    upstream.plan = { text: 'a b c d e f g h', chunkCount: 8, delayMs: 100 }; // about 800 ms, gaps of 100 ms
    const answer = await readStream(await postChat(gateway.url, { model: 'idle/m' }));
    expect(answer.content).toBe('a b c d e f g h');
    expect(answer.done).toBe(true);
  });
});

describe('total timeout', () => {
  it('a steady answer longer than totalMs: the deltas so far, then upstream_total_timeout; upstream closed', async () => {
    const pieces = Array.from({ length: 200 }, (_, index) => `p${index.toString()};`);
    upstream.plan = { pieces, delayMs: 20 }; // about 4 s if nothing stopped it
    const started = performance.now();
    const response = await postChat(gateway.url, { model: 'total/m' });
    expect(response.status).toBe(200);
    const answer = await within(readStream(response), 3000, 'the stream to end');
    const endedAt = performance.now();
    expect(answer.errorCode).toBe('upstream_total_timeout');
    expect(answer.payloads.at(-1)).toContain('"upstream_total_timeout"');
    expect(answer.done).toBe(false);
    // A non-empty, strict prefix of the answer, cut at a chunk boundary.
    expect(answer.content.length).toBeGreaterThan(0);
    expect(pieces.join('').startsWith(answer.content)).toBe(true);
    expect(answer.content.length).toBeLessThan(pieces.join('').length);
    expect(answer.content.endsWith(';')).toBe(true);
    expect(endedAt - started).toBeGreaterThanOrEqual(totalMs);
    expect(endedAt - started).toBeLessThan(totalMs + 700);
    const closedAt = await within(upstream.requests[0]!.closed, cancelWithinMs + 1000, 'the upstream request to close');
    expect(closedAt - endedAt).toBeLessThan(cancelWithinMs);
  });
});
