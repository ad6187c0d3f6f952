// The HTTP call shell every HTTP adapter runs in: an error status fails the call with the adapter's
// error before anything is pushed, `start` comes before the decoded batches, a 200 that carries an
// error (wholeAnswer) is refused before `start`, and the upstream connection is closed on every
// way out: a consumer that stops early (through the signal), an abort, a failed decode.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SluiceError } from '../../errors/sluice-error.js';
import type { EventSourceMessage } from 'eventsource-parser';
import { collectPushed, recordingSink, type Pushed } from '../../../test/support/pushed-events.js';
import { EventBatcher, SseBodyDecoder, type SseEventDecoder } from './body-decoder.js';
import { readBodyText } from './http-client.js';
import { signalCancellation } from './cancellation.js';
import { streamHttpUpstream, type HttpUpstreamCall, type UpstreamAnswer, type WholeResponse } from './http-upstream.js';

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

let server: Server;
let url: string;
let handler: Handler = (_request, response) => response.end();
/** Resolves when the server's current response closes (the client went away, or it ended). */
let responseClosed: Promise<void>;
/** The connection of the server's last request. */
let lastSocket: Socket | undefined;
const dispatcher = new Agent();

beforeAll(async () => {
  server = createServer((request, response) => {
    responseClosed = new Promise((resolve) => response.once('close', () => resolve()));
    lastSocket = request.socket;
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
    cancellation: signalCancellation(new AbortController().signal),
    request: { url, headers: { 'content-type': 'application/json' }, body: '{}' },
    traceparent: undefined,
    upstreamModel: 'model-x',
    mapErrorResponse: (response) => new SluiceError('upstream_bad_request', { provider: 'test', upstreamStatus: response.status, message: `mapped ${response.status.toString()}: ${response.text}` }),
    // The body read whole.
    decode: async (response) => [
      { type: 'text-delta', text: await readBodyText(response.body) },
      { type: 'end', finishReason: 'stop' },
    ],
    ...overrides,
  };
}

function run(upstream: HttpUpstreamCall): Promise<Pushed> {
  return collectPushed(streamHttpUpstream(upstream));
}

/** A small SSE chunk decoder: each event's data is text, `[DONE]` ends the answer, a body that ends before it was cut short. */
class DoneMarkerDecoder extends EventBatcher implements SseEventDecoder {
  done = false;

  message(message: EventSourceMessage): void {
    if (this.done) return;
    if (message.data === '[DONE]') this.done = true;
    else if (message.data === 'fail') throw new SluiceError('upstream_error', { provider: 'test', message: 'the upstream sent an error event' });
    else this.pending.push({ type: 'text-delta', text: message.data });
  }

  finish(): void {
    if (!this.done) throw new SluiceError('upstream_stream_interrupted', { provider: 'test', message: 'cut short' });
    this.pending.push({ type: 'end', finishReason: 'stop' });
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

  /** Decodes with the real SSE scanner, ending the answer at `[DONE]` as the chunk decoders do; keeps the body it read. */
  function sseCall(bodies: UpstreamAnswer['body'][], overrides: Partial<HttpUpstreamCall> = {}): HttpUpstreamCall {
    return call({
      decode(response) {
        bodies.push(response.body);
        return new SseBodyDecoder({ maxEventBytes: 1000, provider: 'test' }, new DoneMarkerDecoder());
      },
      ...overrides,
    });
  }

  it('closes the upstream response when the consumer stops after start', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: first\n\n');
    };
    // A pushed call is stopped through its signal: the consumer aborts it as soon as `start` arrives.
    const controller = new AbortController();
    const reason = new SluiceError('cancelled', { provider: 'test' });
    const sink = recordingSink();
    const bodies: UpstreamAnswer['body'][] = [];
    streamHttpUpstream(sseCall(bodies, { cancellation: signalCancellation(controller.signal) })).pushTo({
      events(batch) {
        sink.events(batch);
        if (batch.some((event) => event.type === 'start')) controller.abort(reason);
      },
      end: () => sink.end(),
      fail: (error) => sink.fail(error),
    });
    const { batches, error } = await sink.settled;
    // Nothing after the abort: not even what the body had buffered already.
    expect(batches).toEqual([[{ type: 'start', upstreamModel: 'model-x' }]]);
    expect(error).toBe(reason);
    // The body was never handed to a decoder, and the upstream saw its response closed.
    expect(bodies).toHaveLength(0);
    await responseClosed;
  });

  it('pushes each read\'s events as one batch as it arrives, and ends at the decoder\'s end marker', async () => {
    let release!: () => void;
    const second = new Promise<void>((resolve) => (release = resolve));
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: a\n\ndata: b\n\n');
      void second.then(() => response.end('data: c\n\ndata: [DONE]\n\n'));
    };
    const sink = recordingSink();
    const bodies: UpstreamAnswer['body'][] = [];
    streamHttpUpstream(sseCall(bodies)).pushTo({
      events(batch) {
        sink.events(batch);
        // The first read is pushed before the second is sent.
        if (batch.some((event) => event.type === 'text-delta')) release();
      },
      end: () => sink.end(),
      fail: (error) => sink.fail(error),
    });
    const { batches, events, error } = await sink.settled;
    expect(error).toBeUndefined();
    expect(events).toEqual([
      { type: 'start', upstreamModel: 'model-x' },
      { type: 'text-delta', text: 'a' },
      { type: 'text-delta', text: 'b' },
      { type: 'text-delta', text: 'c' },
      { type: 'end', finishReason: 'stop' },
    ]);
    expect(batches[0]).toEqual([{ type: 'start', upstreamModel: 'model-x' }]);
    // The last read (`c` and the end marker, written together) is one batch, `end` included.
    expect(batches.at(-1)).toEqual([
      { type: 'text-delta', text: 'c' },
      { type: 'end', finishReason: 'stop' },
    ]);
    await responseClosed;
  });

  it('pushes the chunks of one socket read as one batch, though undici hands each over on its own', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.flushHeaders();
      // Three chunks of the chunked body in one socket write (so in one read on loopback).
      setTimeout(() => {
        response.cork();
        response.write('data: a\n\n');
        response.write('data: b\n\n');
        response.write('data: c\n\n');
        process.nextTick(() => response.uncork());
        setTimeout(() => response.end('data: [DONE]\n\n'), 50);
      }, 20);
    };
    const bodies: UpstreamAnswer['body'][] = [];
    const { batches, error } = await run(sseCall(bodies));
    expect(error).toBeUndefined();
    expect(batches).toContainEqual([
      { type: 'text-delta', text: 'a' },
      { type: 'text-delta', text: 'b' },
      { type: 'text-delta', text: 'c' },
    ]);
  });

  it('lets the response of a complete answer run to its end, so its connection serves the next request', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      // The answer and the end of the body in one write, as the last read of a stream often is.
      response.end('data: a\n\ndata: [DONE]\n\n');
    };
    const { events, error } = await run(sseCall([]));
    expect(error).toBeUndefined();
    expect(events.map((event) => event.type)).toEqual(['start', 'text-delta', 'end']);
    const first = lastSocket;
    // The first request's turn is over: its connection is free again, unless it was closed.
    await new Promise((resolve) => setImmediate(resolve));
    await run(sseCall([]));
    // Not aborted: an aborted response would have closed its connection.
    expect(lastSocket).toBe(first);
    expect(first?.destroyed).toBe(false);
  });

  it('closes an upstream that keeps its response open after a complete answer', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: a\n\ndata: [DONE]\n\n');
    };
    const bodies: UpstreamAnswer['body'][] = [];
    const { events, error } = await run(sseCall(bodies));
    expect(error).toBeUndefined();
    expect(events.map((event) => event.type)).toEqual(['start', 'text-delta', 'end']);
    await responseClosed;
  });

  it('rethrows the abort reason and closes the upstream response when the signal aborts mid-body', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: first\n\n');
    };
    const reason = new SluiceError('upstream_idle_timeout', { provider: 'test' });

    // A body read whole: the abort ends the read.
    const whole = new AbortController();
    const wholeSink = recordingSink();
    streamHttpUpstream(call({ cancellation: signalCancellation(whole.signal) })).pushTo({
      events(batch) {
        wholeSink.events(batch);
        whole.abort(reason);
      },
      end: () => wholeSink.end(),
      fail: (error) => wholeSink.fail(error),
    });
    const wholeResult = await wholeSink.settled;
    expect(wholeResult.error).toBe(reason);
    expect(wholeResult.events).toEqual([{ type: 'start', upstreamModel: 'model-x' }]);
    await responseClosed;

    // A streamed body: the abort comes after its first read was decoded and pushed.
    const streamed = new AbortController();
    const streamedSink = recordingSink();
    const bodies: UpstreamAnswer['body'][] = [];
    streamHttpUpstream(sseCall(bodies, { cancellation: signalCancellation(streamed.signal) })).pushTo({
      events(batch) {
        streamedSink.events(batch);
        if (batch.some((event) => event.type === 'text-delta')) streamed.abort(reason);
      },
      end: () => streamedSink.end(),
      fail: (error) => streamedSink.fail(error),
    });
    const streamedResult = await streamedSink.settled;
    expect(streamedResult.error).toBe(reason);
    expect(streamedResult.events).toEqual([
      { type: 'start', upstreamModel: 'model-x' },
      { type: 'text-delta', text: 'first' },
    ]);
    await responseClosed;
  });

  it('fails with the decoder\'s error after what it decoded before it, and closes the body', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      // The response stays open: only the shell can close it.
      response.write('data: a\n\ndata: fail\n\ndata: b\n\n');
    };
    const bodies: UpstreamAnswer['body'][] = [];
    const { events, error } = await run(sseCall(bodies));
    expect(events).toEqual([
      { type: 'start', upstreamModel: 'model-x' },
      { type: 'text-delta', text: 'a' },
    ]);
    expect((error as SluiceError).code).toBe('upstream_error');
    await responseClosed;
  });

  it('fails with the decoder\'s error when a body ends before the answer does, and with decode\'s own throw', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.end('data: a\n\n');
    };
    const cut = await run(sseCall([]));
    expect(cut.events).toEqual([
      { type: 'start', upstreamModel: 'model-x' },
      { type: 'text-delta', text: 'a' },
    ]);
    expect((cut.error as SluiceError).code).toBe('upstream_stream_interrupted');
    await responseClosed;

    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: a\n\n');
    };
    const bodies: UpstreamAnswer['body'][] = [];
    const thrown = await run(
      call({
        decode(response) {
          bodies.push(response.body);
          throw new SluiceError('upstream_protocol_error', { provider: 'test' });
        },
      }),
    );
    expect(thrown.events).toEqual([{ type: 'start', upstreamModel: 'model-x' }]);
    expect((thrown.error as SluiceError).code).toBe('upstream_protocol_error');
    await responseClosed;

    // A body read whole whose decoding fails.
    const rejected = await run(
      call({
        async decode(response) {
          bodies.push(response.body);
          await Promise.resolve();
          throw new SluiceError('upstream_protocol_error', { provider: 'test' });
        },
      }),
    );
    expect(rejected.events).toEqual([{ type: 'start', upstreamModel: 'model-x' }]);
    expect((rejected.error as SluiceError).code).toBe('upstream_protocol_error');
    await responseClosed;
  });

  it('maps a transport failure while decoding, and closes the body', async () => {
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('partial');
      setTimeout(() => response.socket?.destroy(), 20);
    };
    const bodies: UpstreamAnswer['body'][] = [];
    const { events, error } = await run(
      call({
        decode: async (response) => {
          bodies.push(response.body);
          return [{ type: 'text-delta', text: await readBodyText(response.body) }];
        },
      }),
    );
    expect(events).toEqual([{ type: 'start', upstreamModel: 'model-x' }]);
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as SluiceError).code).toBe('upstream_stream_interrupted');

    // The same through a streamed body, after its first read was pushed.
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: a\n\n');
      setTimeout(() => response.socket?.destroy(), 20);
    };
    const streamed = await run(sseCall(bodies));
    expect(streamed.events).toEqual([
      { type: 'start', upstreamModel: 'model-x' },
      { type: 'text-delta', text: 'a' },
    ]);
    expect((streamed.error as SluiceError).code).toBe('upstream_stream_interrupted');
  });

  it('waits past an informational answer (103 Early Hints) for the response proper', async () => {
    handler = (_request, response) => {
      response.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.end('data: a\n\ndata: [DONE]\n\n');
    };
    const { events, error } = await run(sseCall([]));
    expect(error).toBeUndefined();
    expect(events).toEqual([
      { type: 'start', upstreamModel: 'model-x' },
      { type: 'text-delta', text: 'a' },
      { type: 'end', finishReason: 'stop' },
    ]);
  });

  it('stops gathering a body read whole when the signal aborts, with the abort\'s reason', async () => {
    handler = (_request, response) => {
      response.writeHead(500, { 'content-type': 'application/json' });
      // The error body never ends: only the abort ends the read.
      response.write('{"error":');
    };
    const controller = new AbortController();
    const reason = new SluiceError('upstream_first_byte_timeout', { provider: 'test' });
    const settled = run(call({ cancellation: signalCancellation(controller.signal) }));
    setTimeout(() => controller.abort(reason), 30);
    const { events, error } = await settled;
    expect(events).toEqual([]);
    expect(error).toBe(reason);
    await responseClosed;
  });

  it('fails the call, not the caller, when the request cannot be sent (a URL that does not parse)', async () => {
    const { events, error } = await run(call({ request: { url: 'not a url', headers: {}, body: '' } }));
    expect(events).toEqual([]);
    expect((error as SluiceError).code).toBe('upstream_error');
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
