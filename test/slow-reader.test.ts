// A client that stops reading cannot make the gateway buffer without bound: past
// server.maxBufferedBytes its stream ends (client_too_slow) and the upstream call is cancelled.
// A client that is slow but keeps reading still gets every byte.
import { connect } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockOpenAi, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, openAiConfig, type TestGateway } from './support/gateway.js';

let upstream: MockOpenAi;
let gateway: TestGateway;

beforeAll(async () => {
  upstream = await startMockOpenAi();
  gateway = await startGateway(openAiConfig(upstream.baseUrl, upstream.apiKey, { server: { maxBufferedBytes: 256 * 1024 } }));
});
afterAll(async () => {
  await gateway.close();
  await upstream.close();
});
beforeEach(() => upstream.reset());

/** Streams `count` chunks of `size` characters as fast as the socket takes them; counts what it wrote. */
function floodUpstream(count: number, size: number): { written: number } {
  const progress = { written: 0 };
  upstream.handlers.push(async (_request, response) => {
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    const piece = 'z'.repeat(size);
    for (let index = 0; index < count && !response.destroyed; index++) {
      const ok = response.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`);
      progress.written += size;
      if (!ok) {
        await new Promise<void>((resolve) => {
          const done = () => {
            response.off('drain', done).off('close', done);
            resolve();
          };
          response.on('drain', done).on('close', done);
        });
      }
    }
    if (!response.destroyed) {
      response.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
      response.end('data: [DONE]\n\n');
    }
    return true;
  });
  return progress;
}

describe('slow readers', () => {
  it('a client that stops reading is cut off and the upstream cancelled', async () => {
    const progress = floodUpstream(20_000, 4096); // about 80 MB if nobody stopped it
    const port = new URL(gateway.url).port;
    const socket = connect(Number(port), '127.0.0.1');
    const body = JSON.stringify({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body).toString()}\r\n\r\n${body}`);
    // Read the first bytes so the stream is known to have started, then stop reading.
    await new Promise((resolve) => socket.once('data', resolve));
    socket.pause();
    const closed = await Promise.race([upstream.requests[0]!.closed.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 8000))]);
    expect(closed).toBe(true);
    // What the kernel's socket buffers hold plus the cap: megabytes, not the whole 80 MB answer.
    expect(progress.written).toBeLessThan(24 * 1024 * 1024);
    // The response is destroyed a second after the error was queued; then its log line is written.
    const deadline = performance.now() + 3000;
    while (!gateway.logs.join('').includes('"errorCode":"client_too_slow"') && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(gateway.logs.join('')).toContain('"errorCode":"client_too_slow"');
    socket.destroy();
  });

  it('a slow client that keeps reading gets the full answer', async () => {
    floodUpstream(100, 1000); // 100 kB: under the cap
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const decoder = new TextDecoder();
    let text = '';
    for await (const value of response.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(value, { stream: true });
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const content = text
      .split('\n')
      .filter((line) => line.startsWith('data: {'))
      .map((line) => (JSON.parse(line.slice(6)) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '')
      .join('');
    expect(content).toBe('z'.repeat(100_000));
    expect(text).toContain('data: [DONE]');
  });
});
