// Providers reach their upstream through an outbound HTTP proxy when told to: a provider's own
// `proxy:` (which wins over the environment), or HTTP_PROXY / HTTPS_PROXY by the target's scheme,
// minus NO_PROXY. Answers through the proxy are exact, streamed or not; without a proxy setting
// nothing goes through one.
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockOpenAi, defaultAnswer, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { postChat, readCompletionText, readErrorAnswer, readStream } from './support/chat-client.js';
import { sparkCredentials, startMockSpark, type MockSpark } from './support/mock-spark.js';

interface TestProxy {
  url: string;
  /** What it was asked for: `CONNECT host:port`, or `<METHOD> host:port` for absolute-URI requests. */
  seen: string[];
  close(): Promise<void>;
}

/** A minimal forward proxy on 127.0.0.1: CONNECT tunnels and absolute-URI forwarding. */
async function startProxy(): Promise<TestProxy> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  };
  const server: Server = createServer((request, response) => {
    const target = new URL(request.url ?? '');
    seen.push(`${request.method ?? ''} ${target.host}`);
    const forwarded = httpRequest(
      { host: target.hostname, port: target.port, path: target.pathname + target.search, method: request.method, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    forwarded.on('error', () => response.destroy());
    request.pipe(forwarded);
  });
  server.on('connection', track);
  server.on('connect', (request, client: Socket, head: Buffer) => {
    const target = request.url ?? '';
    seen.push(`CONNECT ${target}`);
    const colon = target.lastIndexOf(':');
    const upstream = connect(Number(target.slice(colon + 1)), target.slice(0, colon), () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    track(upstream);
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port.toString()}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

// The gateway must take proxy settings from the env it is given, never from this process's.
const proxyVariables = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'];
const savedVariables = new Map<string, string>();

let upstream: MockOpenAi;
let spark: MockSpark;
let proxy: TestProxy;
let otherProxy: TestProxy;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  for (const name of proxyVariables) {
    const value = process.env[name];
    if (value !== undefined) savedVariables.set(name, value);
    delete process.env[name];
  }
  upstream = await startMockOpenAi();
  spark = await startMockSpark();
  proxy = await startProxy();
  otherProxy = await startProxy();
});
afterAll(async () => {
  for (const gateway of gateways) await gateway.close();
  await upstream?.close();
  await spark?.close();
  await proxy?.close();
  await otherProxy?.close();
  for (const [name, value] of savedVariables) process.env[name] = value;
});
beforeEach(() => {
  upstream.reset();
  proxy.seen.length = 0;
  otherProxy.seen.length = 0;
});

async function gatewayWith(provider: Record<string, unknown>, env: Record<string, string> = {}): Promise<TestGateway> {
  const gateway = await startGateway({ providers: { upstream: { type: 'openai', apiKey: upstream.apiKey, baseUrl: upstream.baseUrl, ...provider } } }, env);
  gateways.push(gateway);
  return gateway;
}

const upstreamHost = () => `127.0.0.1:${upstream.port.toString()}`;

async function expectExactAnswers(gateway: TestGateway): Promise<void> {
  const streamed = await postChat(gateway.url, { model: 'upstream/gpt-4o-mini' });
  expect(streamed.status).toBe(200);
  const answer = await readStream(streamed);
  expect(answer.content).toBe(defaultAnswer);
  expect(answer.done).toBe(true);
  const whole = await postChat(gateway.url, { model: 'upstream/gpt-4o-mini', stream: false });
  expect(whole.status).toBe(200);
  expect(await readCompletionText(whole)).toBe(defaultAnswer);
  expect(upstream.requests).toHaveLength(2);
}

describe('outbound proxy', () => {
  it('a provider with proxy: sends its requests through it', async () => {
    const gateway = await gatewayWith({ proxy: proxy.url });
    await expectExactAnswers(gateway);
    expect(proxy.seen.length).toBeGreaterThan(0);
    expect(proxy.seen.every((line) => line.endsWith(` ${upstreamHost()}`))).toBe(true);
  });

  it('HTTP_PROXY from the environment carries http:// upstreams', async () => {
    const gateway = await gatewayWith({}, { HTTP_PROXY: proxy.url });
    await expectExactAnswers(gateway);
    expect(proxy.seen.length).toBeGreaterThan(0);
    expect(proxy.seen.every((line) => line.endsWith(` ${upstreamHost()}`))).toBe(true);
  });

  it('HTTPS_PROXY from the environment carries https:// upstreams (and not http:// ones)', async () => {
    // The mock speaks plain HTTP, so TLS through the tunnel fails; what matters is where it went.
    const tlsGateway = await gatewayWith({ baseUrl: `https://${upstreamHost()}/v1` }, { HTTPS_PROXY: proxy.url });
    const failed = await readErrorAnswer(await postChat(tlsGateway.url, { model: 'upstream/gpt-4o-mini' }));
    expect(failed.status).toBeGreaterThanOrEqual(500);
    expect(proxy.seen).toContain(`CONNECT ${upstreamHost()}`);

    proxy.seen.length = 0;
    const plainGateway = await gatewayWith({}, { HTTPS_PROXY: proxy.url });
    await expectExactAnswers(plainGateway);
    expect(proxy.seen).toEqual([]);
  });

  it('NO_PROXY exempts matching hosts', async () => {
    const gateway = await gatewayWith({}, { HTTP_PROXY: proxy.url, NO_PROXY: 'localhost,127.0.0.1' });
    await expectExactAnswers(gateway);
    expect(proxy.seen).toEqual([]);
  });

  it("a provider's own proxy wins over the environment's", async () => {
    const gateway = await gatewayWith({ proxy: proxy.url }, { HTTP_PROXY: otherProxy.url });
    await expectExactAnswers(gateway);
    expect(proxy.seen.length).toBeGreaterThan(0);
    expect(otherProxy.seen).toEqual([]);
  });

  it('without any proxy setting, nothing goes through a proxy', async () => {
    const gateway = await gatewayWith({});
    await expectExactAnswers(gateway);
    expect(proxy.seen).toEqual([]);
    expect(otherProxy.seen).toEqual([]);
  });
});

describe('outbound proxy for a WebSocket provider (Spark)', () => {
  const sparkHost = () => new URL(spark.baseUrl).host;

  async function sparkGatewayWith(provider: Record<string, unknown>, env: Record<string, string> = {}): Promise<TestGateway> {
    const gateway = await startGateway({ providers: { spark: { type: 'spark', baseUrl: spark.baseUrl, ...sparkCredentials, ...provider } } }, env);
    gateways.push(gateway);
    return gateway;
  }

  async function expectSparkAnswer(gateway: TestGateway): Promise<void> {
    spark.reset();
    const streamed = await postChat(gateway.url, { model: 'spark/generalv3.5' });
    expect(streamed.status).toBe(200);
    const answer = await readStream(streamed);
    expect(answer.content).toBe('答复[hi] 完成 🙂');
    expect(spark.frames).toHaveLength(1);
  }

  it('a provider with proxy: opens its signed WebSocket through a CONNECT tunnel', async () => {
    const gateway = await sparkGatewayWith({ proxy: proxy.url });
    await expectSparkAnswer(gateway);
    expect(proxy.seen).toEqual([`CONNECT ${sparkHost()}`]);
  });

  it('HTTP_PROXY carries ws:// upstreams, NO_PROXY exempts them, and the provider proxy wins', async () => {
    await expectSparkAnswer(await sparkGatewayWith({}, { HTTP_PROXY: proxy.url }));
    expect(proxy.seen).toEqual([`CONNECT ${sparkHost()}`]);

    proxy.seen.length = 0;
    await expectSparkAnswer(await sparkGatewayWith({}, { HTTP_PROXY: proxy.url, NO_PROXY: 'localhost,127.0.0.1' }));
    expect(proxy.seen).toEqual([]);

    await expectSparkAnswer(await sparkGatewayWith({ proxy: proxy.url }, { HTTP_PROXY: otherProxy.url }));
    expect(proxy.seen).toEqual([`CONNECT ${sparkHost()}`]);
    expect(otherProxy.seen).toEqual([]);
  });
});
