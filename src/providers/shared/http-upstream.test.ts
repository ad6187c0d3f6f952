// The HTTP call shell every HTTP adapter runs in: an error status is thrown as the adapter's error
// before anything is yielded, `start` comes before the decoded batches, a 200 that carries an
// error (wholeAnswer) is refused before `start`, and the upstream connection is closed on every
// way out: a consumer that stops early, an abort, a failed decode.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SluiceError } from '../../errors/sluice-error.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { readBodyText, type UpstreamResponse } from './http-client.js';
import { readSseEvents } from './sse-reader.js';
import { streamHttpUpstream, type HttpUpstreamCall, type WholeResponse } from './http-upstream.js';

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

let server: Server;
let url: string;
let handler: Handler = (_request, response) => response.end();
/** Resolves when the server's current response closes (the client went away, or it ended). */
let responseClosed: Promise<void>;
const dispatcher = new Agent();

beforeAll(async () => {
  server = createServer((request, response) => {
    responseClosed = new Promise((resolve) => response.once('close', () => resolve()));
    request.resume();
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port.toString()}/chat`;
});
afterEach(() => {
  handler = (_request, response) => response.end();
});
afterAll(async () => {
  await dispatcher.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function call(overrides: Partial<HttpUpstreamCall> = {}): HttpUpstreamCall {
  return {
    provider: 'test',
    dispatcher,
    signal: new AbortController().signal,
    request: { url, headers: { 'content-type': 'application/json' }, body: '{}' },
    traceparent: undefined,
    upstreamModel: 'model-x',
    mapErrorResponse: (response) => new SluiceError('upstream_bad_request', { provider: 'test', upstreamStatus: response.status, message: `mapped ${response.status.toString()}: ${response.text}` }),
    async *decode(response) {
      yield [{ type: 'text-delta', text: await readBodyText(response.body) }];
      yield [{ type: 'end', finishReason: 'stop' }];
    },
    ...overrides,
  };
}

async function run(upstream: HttpUpstreamCall): Promise<{ events: StreamEvent[]; error?: unknown }> {
  const events: StreamEvent[] = [];
  try {
    for await (const batch of streamHttpUpstream(upstream)) events.push(...batch);
    return { events };
  } catch (error) {
    return { events, error };
  }
}

describe('streamHttpUpstream', () => {
  it('yields start, then the decoded batches, with the asked-for headers passed on', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'x-trace-id': 'trace-1', 'x-other': 'no' });
      response.end('hello');
    };
    const { events, error } = await run(call({ passHeaders: ['x-trace-id', 'x-absent'] }));
    expect(error).toBeUndefined();
    expect(events).toEqual([
      { type: 'start', upstreamModel: 'model-x', responseHeaders: { 'x-trace-id': 'trace-1' } },
      { type: 'text-delta', text: 'hello' },
      { type: 'end', finishReason: 'stop' },
    ]);
  });

  it('throws the adapter\'s mapping of an error status, with the body read, before yielding anything', async () => {
    handler = (_request, response) => {
      response.writeHead(429, { 'retry-after': '7' });
      response.end('{"error":"slow down"}');
    };
    let seen: WholeResponse | undefined;
    const { events, error } = await run(
      call({
        mapErrorResponse: (response) => {
          seen = response;
          return new SluiceError('upstream_rate_limited', { provider: 'test' });
        },
      }),
    );
    expect(events).toEqual([]);
    expect((error as SluiceError).code).toBe('upstream_rate_limited');
    expect(seen).toMatchObject({ status: 429, text: '{"error":"slow down"}', headers: { 'retry-after': '7' } });
  });

  it('refuses a 200 that carries an error (wholeAnswer) before start, and decodes one that does not after it', async () => {
    const wholeAnswer: HttpUpstreamCall['wholeAnswer'] = {
      when: (response) => String(response.headers['content-type']).includes('json'),
      errorOf: (response) => (response.text.includes('error_code') ? new SluiceError('upstream_unavailable', { provider: 'test' }) : undefined),
      decode: (response) => [{ type: 'text-delta', text: response.text }, { type: 'end', finishReason: 'stop' }],
    };
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"error_code":336100}');
    };
    const refused = await run(call({ wholeAnswer }));
    expect(refused.events).toEqual([]);
    expect((refused.error as SluiceError).code).toBe('upstream_unavailable');

    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"result":"ok"}');
    };
    const answered = await run(call({ wholeAnswer }));
    expect(answered.error).toBeUndefined();
    expect(answered.events).toEqual([{ type: 'start', upstreamModel: 'model-x' }, { type: 'text-delta', text: '{"result":"ok"}' }, { type: 'end', finishReason: 'stop' }]);
  });

  it('closes the upstream response when the consumer stops after start', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: first\n\n');
    };
    for await (const batch of streamHttpUpstream(call())) {
      expect(batch).toEqual([{ type: 'start', upstreamModel: 'model-x' }]);
      break;
    }
    await responseClosed;
  });

  /** Decodes with the real SSE reader, ending the answer at `[DONE]` as the chunk decoders do; keeps the body it read. */
  function sseCall(bodies: UpstreamResponse['body'][]): HttpUpstreamCall {
    return call({
      async *decode(response) {
        bodies.push(response.body);
        for await (const batch of readSseEvents(response.body, { maxEventBytes: 1000, provider: 'test' })) {
          for (const message of batch) {
            if (message.data === '[DONE]') {
              yield [{ type: 'end', finishReason: 'stop' }];
              return;
            }
            yield [{ type: 'text-delta', text: message.data }];
          }
        }
      },
    });
  }

  /** Reads like the generation: stops as soon as the terminal event arrives. */
  async function readUntilEnd(upstream: HttpUpstreamCall): Promise<StreamEvent[]> {
    const events: StreamEvent[] = [];
    for await (const batch of streamHttpUpstream(upstream)) {
      events.push(...batch);
      if (batch.some((event) => event.type === 'end')) break;
    }
    return events;
  }

  it('lets the body of a complete answer run to its end instead of aborting it (no abort error built)', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      // The answer and the end of the body in one write, as the last read of a stream often is.
      response.end('data: a\n\ndata: [DONE]\n\n');
    };
    const bodies: UpstreamResponse['body'][] = [];
    const errors: unknown[] = [];
    const events = await readUntilEnd(sseCall(bodies));
    bodies[0]?.on('error', (error) => errors.push(error));
    await responseClosed;
    await new Promise((resolve) => setImmediate(resolve));
    expect(events.map((event) => event.type)).toEqual(['start', 'text-delta', 'end']);
    expect(bodies[0]?.readableEnded).toBe(true);
    expect(errors).toEqual([]);
  });

  it('closes an upstream that keeps its response open after a complete answer', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: a\n\ndata: [DONE]\n\n');
    };
    const bodies: UpstreamResponse['body'][] = [];
    expect((await readUntilEnd(sseCall(bodies))).map((event) => event.type)).toEqual(['start', 'text-delta', 'end']);
    await responseClosed;
    expect(bodies[0]?.destroyed).toBe(true);
  });

  it('rethrows the abort reason and closes the upstream response when the signal aborts mid-body', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: first\n\n');
    };
    const controller = new AbortController();
    const reason = new SluiceError('upstream_idle_timeout', { provider: 'test' });
    const events: StreamEvent[] = [];
    const reading = (async () => {
      for await (const batch of streamHttpUpstream(call({ signal: controller.signal }))) {
        events.push(...batch);
        controller.abort(reason);
      }
    })();
    await expect(reading).rejects.toBe(reason);
    expect(events).toEqual([{ type: 'start', upstreamModel: 'model-x' }]);
    await responseClosed;
  });

  it('maps a transport failure while decoding, and closes the body', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('partial');
      setTimeout(() => response.socket?.destroy(), 20);
    };
    const { events, error } = await run(call());
    expect(events).toEqual([{ type: 'start', upstreamModel: 'model-x' }]);
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as SluiceError).code).toBe('upstream_stream_interrupted');
  });

  it('maps a refused connection to upstream_connect_failed', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const { events, error } = await run(call({ request: { url: `http://127.0.0.1:${port.toString()}/chat`, headers: {}, body: '' } }));
    expect(events).toEqual([]);
    expect((error as SluiceError).code).toBe('upstream_connect_failed');
  });
});
