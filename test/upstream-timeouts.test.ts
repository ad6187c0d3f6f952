// Each upstream timeout fires with its own error code, and closes the upstream connection.
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockOpenAi, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, type TestGateway } from './support/gateway.js';

let upstream: MockOpenAi;
let gateway: TestGateway;
let silent: Server;
const silentSockets = new Set<Socket>();

beforeAll(async () => {
  upstream = await startMockOpenAi();
  // Accepts TCP connections and never answers: a TLS handshake to it never completes.
  silent = createServer((socket) => {
    silentSockets.add(socket);
    socket.on('close', () => silentSockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const silentPort = (silent.address() as { port: number }).port;
  const provider = (timeouts: Record<string, number>) => ({ type: 'openai', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey, timeouts });
  gateway = await startGateway({
    providers: {
      connect: { type: 'openai', baseUrl: `https://127.0.0.1:${silentPort.toString()}/v1`, apiKey: 'k', timeouts: { connectMs: 150 } },
      firstbyte: provider({ firstByteMs: 150 }),
      idle: provider({ idleMs: 150 }),
      total: provider({ totalMs: 300 }),
    },
  });
});
afterAll(async () => {
  await gateway.close();
  await upstream.close();
  for (const socket of silentSockets) socket.destroy();
  await new Promise((resolve) => silent.close(resolve));
});
beforeEach(() => upstream.reset());

async function chat(model: string): Promise<{ status: number; text: string; elapsedMs: number }> {
  const started = performance.now();
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const text = await response.text();
  return { status: response.status, text, elapsedMs: performance.now() - started };
}

function errorCode(text: string): string | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const json = JSON.parse(line.slice(6)) as { error?: { code: string } };
    if (json.error) return json.error.code;
  }
  return undefined;
}

describe('upstream timeouts', () => {
  it('connect: 504 upstream_connect_timeout', async () => {
    const result = await chat('connect/m');
    expect(result.status).toBe(504);
    expect(errorCode(`data: ${result.text}`)).toBe('upstream_connect_timeout');
    expect(result.elapsedMs).toBeLessThan(2000);
  });

  it('first byte: 504 upstream_first_byte_timeout before anything reached the client, upstream closed', async () => {
    upstream.handlers.push((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(': accepted\n\n');
      return true;
    });
    const result = await chat('firstbyte/m');
    expect(result.status).toBe(504);
    expect(errorCode(`data: ${result.text}`)).toBe('upstream_first_byte_timeout');
    await upstream.requests[0]!.closed;
  });

  it('idle: the deltas before the pause, then an in-band upstream_idle_timeout', async () => {
    upstream.handlers.push((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'before pause' }, finish_reason: null }] })}\n\n`);
      return true;
    });
    const result = await chat('idle/m');
    expect(result.status).toBe(200);
    expect(result.text).toContain('before pause');
    expect(errorCode(result.text)).toBe('upstream_idle_timeout');
    await upstream.requests[0]!.closed;
  });

  it('total: a steady but too long answer ends with upstream_total_timeout', async () => {
    upstream.plan = { chunkCount: 50, delayMs: 20 };
    const result = await chat('total/m');
    expect(result.status).toBe(200);
    expect(errorCode(result.text)).toBe('upstream_total_timeout');
    expect(result.elapsedMs).toBeLessThan(1000);
    await upstream.requests[0]!.closed;
  });
});
