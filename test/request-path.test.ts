// The request's way in that decision 0027 shortened: a plain path is routed without the URL parser
// (any other target still goes through it, dot segments and all), and a body that arrived whole
// with the head is taken at once. Driven over raw sockets (node:http), which send the target and
// the body exactly as written; fetch would normalise the path and choose its own writes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { defaultAnswer, startMockOpenAi, type MockOpenAi } from './support/mock-openai.js';
import { openAiConfig, startGateway, type TestGateway } from './support/gateway.js';
import { parseOpenAiStream } from './support/chat-client.js';

let upstream: MockOpenAi;
let gateway: TestGateway;
let port: number;

beforeAll(async () => {
  upstream = await startMockOpenAi();
  gateway = await startGateway(openAiConfig(upstream.baseUrl, upstream.apiKey));
  port = Number(new URL(gateway.url).port);
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});

const chatBody = JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'Hello' }] });

/** One request through node:http with `path` sent verbatim; the status and the body as text. */
function send(path: string, options: { method?: string; body?: string; agent?: Agent } = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', agent: options.agent ?? false, headers: options.body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(options.body) } : {} }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (part: string) => (text += part));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
    });
    request.on('error', reject);
    request.end(options.body);
  });
}

const errorMessage = (text: string): string => (JSON.parse(text) as { error: { message: string } }).error.message;

/** Writes raw bytes on one connection and reads until `done` says the answer is whole. */
function raw(parts: readonly { bytes: string; afterMs?: number }[], done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (part: string) => {
      text += part;
      if (done(text)) {
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('error', reject);
    socket.on('connect', () => {
      void (async () => {
        for (const part of parts) {
          if (part.afterMs) await new Promise((wait) => setTimeout(wait, part.afterMs));
          socket.write(part.bytes);
        }
      })();
    });
  });
}

describe('request target', () => {
  it('routes a plain path, and a path with dot segments or a query the way the URL parser reads it', async () => {
    expect((await send('/v1/models')).status).toBe(200);
    expect((await send('/v1/./models')).status).toBe(200);
    expect((await send('/v1/chat/../models')).status).toBe(200);
    expect((await send('/v1/models?limit=5')).status).toBe(200);
    const chat = await send('/v1/x/../chat/completions', { method: 'POST', body: chatBody });
    expect(chat.status).toBe(200);
    expect((JSON.parse(chat.text) as { object: string }).object).toBe('chat.completion');
  });

  it('answers 404 naming the path the URL parser gives, for plain and unusual targets alike', async () => {
    const plain = await send('/v1/nothing-here');
    expect(plain.status).toBe(404);
    expect(errorMessage(plain.text)).toContain('/v1/nothing-here');
    const encoded = await send('/v1/mod%65ls/');
    expect(encoded.status).toBe(404);
    expect(errorMessage(encoded.text)).toContain('/v1/mod%65ls/');
  });
});

describe('a body that came whole with the head', () => {
  it('is answered, and the connection serves the next request (the body was read to its end)', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let index = 0; index < 3; index++) {
        const answer = await send('/v1/chat/completions', { method: 'POST', body: chatBody, agent });
        expect(answer.status).toBe(200);
        expect((JSON.parse(answer.text) as { choices: { message: { content: unknown } }[] }).choices[0]?.message.content).toBeTypeOf('string');
      }
    } finally {
      agent.destroy();
    }
  });

  it('gets invalid_json when it is not JSON, as a body read over several packets does', async () => {
    const broken = '{"model": "gpt-test", "messages": [';
    const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(broken).toString()}\r\nconnection: close\r\n\r\n`;
    const whole = await raw([{ bytes: head + broken }], (text) => text.includes('invalid_json'));
    expect(whole).toMatch(/^HTTP\/1.1 400/);
    const split = await raw([{ bytes: head + broken.slice(0, 10) }, { bytes: broken.slice(10), afterMs: 50 }], (text) => text.includes('invalid_json'));
    expect(split).toMatch(/^HTTP\/1.1 400/);
  });

  it('is read in full when it comes in parts after the head', async () => {
    const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(chatBody).toString()}\r\nconnection: close\r\n\r\n`;
    const answer = await raw(
      [
        { bytes: head + chatBody.slice(0, 5) },
        { bytes: chatBody.slice(5, 30), afterMs: 30 },
        { bytes: chatBody.slice(30), afterMs: 30 },
      ],
      (text) => text.includes('chat.completion'),
    );
    expect(answer).toMatch(/^HTTP\/1.1 200/);
  });
});

describe('a streamed answer', () => {
  it("lets go of its request's headers while it streams (the caller's credentials need not last as long as the stream), and arrives whole", async () => {
    const requests: IncomingMessage[] = [];
    const capture = (request: IncomingMessage): void => void requests.push(request);
    gateway.app.server.on('request', capture);
    upstream.plan = { delayMs: 20 };
    try {
      const response = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: 'session=a-secret-session', 'x-request-id': 'stream-headers-1' },
        body: JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'Hello' }], stream: true }),
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('x-request-id')).toBe('stream-headers-1');
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let text = decoder.decode((await reader.read()).value, { stream: true });
      // The first chunk is here and the upstream still has tokens to send.
      expect(requests).toHaveLength(1);
      expect(requests[0]?.rawHeaders).toEqual([]);
      expect(requests[0]?.headers).toEqual({});
      for (let part = await reader.read(); !part.done; part = await reader.read()) text += decoder.decode(part.value, { stream: true });
      const answer = parseOpenAiStream(text);
      expect(answer.content).toBe(defaultAnswer);
      expect(answer.done).toBe(true);
      expect(answer.afterEnd).toBe(0);
    } finally {
      upstream.reset();
      gateway.app.server.off('request', capture);
    }
  });
});
