// Providers reach their upstream through an HTTP proxy: per provider, or from HTTPS_PROXY/HTTP_PROXY.
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockOpenAi, defaultAnswer, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, type TestGateway } from './support/gateway.js';

/** A minimal forward proxy: CONNECT tunnels and absolute-URI requests, recording the targets. */
async function startProxy(): Promise<{ url: string; seen: string[]; close: () => Promise<void> }> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((request, response) => {
    const target = new URL(request.url ?? '');
    seen.push(`${request.method ?? ''} ${target.host}`);
    const upstream = httpRequest({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    request.pipe(upstream);
  });
  server.on('connect', (request, client: Socket, head) => {
    seen.push(`CONNECT ${request.url ?? ''}`);
    const [host, port] = (request.url ?? '').split(':');
    const upstream = connect(Number(port), host ?? '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => socket.destroy());
      socket.on('close', () => sockets.delete(socket));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port.toString()}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let upstream: MockOpenAi;
let proxy: Awaited<ReturnType<typeof startProxy>>;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  upstream = await startMockOpenAi();
  proxy = await startProxy();
});
afterAll(async () => {
  for (const gateway of gateways) await gateway.close();
  await upstream.close();
  await proxy.close();
});

async function chat(gateway: TestGateway): Promise<string> {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'upstream/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { choices: { message: { content: string } }[] }).choices[0]?.message.content ?? '';
}

describe('outbound proxy', () => {
  it('a provider with proxy: goes through it', async () => {
    const gateway = await startGateway({ providers: { upstream: { type: 'openai', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey, proxy: proxy.url } } });
    gateways.push(gateway);
    proxy.seen.length = 0;
    expect(await chat(gateway)).toBe(defaultAnswer);
    expect(proxy.seen.some((line) => line.includes(`127.0.0.1:${upstream.port.toString()}`))).toBe(true);
  });

  it('HTTP_PROXY from the environment is used by providers without their own', async () => {
    const gateway = await startGateway({ providers: { upstream: { type: 'openai', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey } } }, { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url });
    gateways.push(gateway);
    proxy.seen.length = 0;
    expect(await chat(gateway)).toBe(defaultAnswer);
    expect(proxy.seen.some((line) => line.includes(`127.0.0.1:${upstream.port.toString()}`))).toBe(true);
  });

  it('without a proxy, nothing goes through one', async () => {
    const gateway = await startGateway({ providers: { upstream: { type: 'openai', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey } } });
    gateways.push(gateway);
    proxy.seen.length = 0;
    expect(await chat(gateway)).toBe(defaultAnswer);
    expect(proxy.seen).toEqual([]);
  });
});
