// What the writer puts on the wire must parse the same in every common client
// (docs/sse-wire-format.md): split multi-line data, no CR/LF in event or id, a lone-line
// heartbeat, and streaming headers that keep proxies from buffering or compressing.
import { createServer, type RequestListener } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { describe, expect, it, vi } from 'vitest';
import { formatSseEvent, heartbeat } from '../../sse/format.js';
import { shareSseFrame, SseStream, writeSharedFrame, writeSseHead } from './sse-writer.js';
import { seededRandom } from '../../../test/support/seeded-random.js';

/** Parses written SSE text the way eventsource-parser (and so the Vercel AI SDK) does. */
function parse(text: string): EventSourceMessage[] {
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  parser.feed(text);
  return events;
}

describe('formatSseEvent', () => {
  it('writes one data line for single-line data', () => {
    expect(formatSseEvent({ data: '{"a":1}' })).toBe('data: {"a":1}\n\n');
  });

  it('splits data on LF, CRLF and CR into several data lines', () => {
    expect(formatSseEvent({ data: 'a\nb\r\nc\rd' })).toBe('data: a\ndata: b\ndata: c\ndata: d\n\n');
    expect(formatSseEvent({ data: 'a\rb' })).toBe('data: a\ndata: b\n\n');
    expect(formatSseEvent({ data: 'a\r\nb' })).toBe('data: a\ndata: b\n\n');
  });

  it('keeps empty lines of data, including a trailing one, as empty data lines', () => {
    expect(formatSseEvent({ data: '' })).toBe('data: \n\n');
    expect(formatSseEvent({ data: 'a\n' })).toBe('data: a\ndata: \n\n');
    expect(formatSseEvent({ data: '\n\nb' })).toBe('data: \ndata: \ndata: b\n\n');
  });

  it('writes event, id and retry lines in that order, before the data', () => {
    expect(formatSseEvent({ event: 'delta', id: 'gen:1', retry: 3000, data: 'x' })).toBe('event: delta\nid: gen:1\nretry: 3000\ndata: x\n\n');
  });

  it('refuses CR or LF in event and id', () => {
    for (const bad of ['a\nb', 'a\rb', 'a\r\nb', '\n']) {
      expect(() => formatSseEvent({ event: bad, data: '' })).toThrow(/event must not contain CR or LF/);
      expect(() => formatSseEvent({ id: bad, data: '' })).toThrow(/id must not contain CR or LF/);
    }
  });

  it('refuses NUL in id, which every client would ignore', () => {
    expect(() => formatSseEvent({ id: 'a\0b', data: '' })).toThrow(/NUL/);
  });

  it('accepts only a retry that clients will honour: plain non-negative integer digits', () => {
    expect(formatSseEvent({ retry: 0, data: 'x' })).toBe('retry: 0\ndata: x\n\n');
    for (const bad of [1.5, -1, Number.NaN, Number.POSITIVE_INFINITY, 1e21]) {
      expect(() => formatSseEvent({ retry: bad, data: '' }), String(bad)).toThrow(/retry must be a non-negative integer/);
    }
  });

  it('round-trips through an SSE parser: any data comes back with its line breaks as LF', () => {
    const pieces = ['a', ' ', '  lead', ':', 'data: x', 'id: 1', '\n', '\r', '\r\n', '\n\n', '你好', '🙂', '\0', '\uFEFF'];
    const next = seededRandom(11);
    for (let round = 0; round < 500; round++) {
      let data = '';
      const length = Math.floor(next() * 8);
      for (let index = 0; index < length; index++) data += pieces[Math.floor(next() * pieces.length)] ?? '';
      const events = parse(formatSseEvent({ data, event: 'delta', id: `g:${round.toString()}` }));
      expect(events, JSON.stringify(data)).toEqual([{ data: data.replace(/\r\n|\r/g, '\n'), event: 'delta', id: `g:${round.toString()}` }]);
    }
  });
});

describe('heartbeat', () => {
  it('is exactly a comment line with no blank line after it', () => {
    expect(heartbeat).toBe(': ping\n');
  });

  it('produces no event of its own, even between two events', () => {
    const text = formatSseEvent({ data: 'a' }) + heartbeat + heartbeat + formatSseEvent({ data: 'b' });
    expect(parse(text).map((event) => event.data)).toEqual(['a', 'b']);
  });
});

/** Runs `handler` on a real server on 127.0.0.1, port 0, for the duration of `use`. */
async function withServer<T>(handler: RequestListener, use: (url: string) => Promise<T>): Promise<T> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await use(`http://127.0.0.1:${(server.address() as AddressInfo).port.toString()}/`);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('SseStream', () => {
  it('sends streaming headers and no compression, even to a client that accepts gzip', async () => {
    await withServer(
      (_request, response) => new SseStream(response, { heartbeatMs: 0 }).end(formatSseEvent({ data: 'bye' })),
      async (url) => {
        const response = await fetch(url, { headers: { 'accept-encoding': 'gzip, br' } });
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
        expect(response.headers.get('cache-control')).toContain('no-cache');
        expect(response.headers.get('x-accel-buffering')).toBe('no');
        expect(response.headers.get('content-encoding')).toBeNull();
        expect(await response.text()).toBe('data: bye\n\n');
      },
    );
  });

  it('sends heartbeats on an idle stream, each a lone comment line, and is closed after end', async () => {
    let opens = 0;
    let stream: SseStream | undefined;
    await withServer(
      (_request, response) => {
        stream = new SseStream(response, { heartbeatMs: 20, onOpen: () => opens++ });
        setTimeout(() => stream?.end(formatSseEvent({ data: 'bye' })), 110);
      },
      async (url) => {
        const text = await (await fetch(url)).text();
        expect(text).toMatch(/^(: ping\n){2,}data: bye\n\n$/);
      },
    );
    // The first heartbeat opened the response; the later ones found it open.
    expect(opens).toBe(1);
    expect(stream?.closed).toBe(true);
  });

  it('writes nothing before the first write, so a disposed stream can still answer with an error status', async () => {
    await withServer(
      (_request, response) => {
        const stream = new SseStream(response, { heartbeatMs: 5 });
        expect(stream.opened).toBe(false);
        stream.dispose();
        // Long enough for several heartbeats, had dispose() not stopped them.
        setTimeout(() => response.writeHead(429, { 'content-type': 'application/json' }).end('{"error":{}}'), 40);
      },
      async (url) => {
        const response = await fetch(url);
        expect(response.status).toBe(429);
        expect(response.headers.get('content-type')).toBe('application/json');
        expect(await response.text()).toBe('{"error":{}}');
      },
    );
  });

  it('stops writing once the client has gone', async () => {
    let resolveClosed!: (stream: SseStream) => void;
    const closed = new Promise<SseStream>((resolve) => (resolveClosed = resolve));
    await withServer(
      (_request, response) => {
        const stream = new SseStream(response, { heartbeatMs: 10 });
        stream.write(formatSseEvent({ data: 'first' }));
        response.once('close', () => resolveClosed(stream));
      },
      async (url) => {
        const controller = new AbortController();
        const response = await fetch(url, { signal: controller.signal });
        const reader = response.body?.getReader();
        await reader?.read();
        controller.abort();
        const stream = await closed;
        expect(stream.closed).toBe(true);
        expect(stream.write(formatSseEvent({ data: 'late' }))).toBe(false);
        expect(() => stream.end()).not.toThrow();
      },
    );
  });

  it('stops its heartbeat at once when made for a response whose client had already gone', async () => {
    const setSpy = vi.spyOn(globalThis, 'setInterval');
    const clearSpy = vi.spyOn(globalThis, 'clearInterval');
    let resolveChecked!: (result: { stopped: boolean; closed: boolean }) => void;
    const checked = new Promise<{ stopped: boolean; closed: boolean }>((resolve) => (resolveChecked = resolve));
    try {
      await withServer(
        (_request, response) => {
          // As a route that awaited admission while its client left: the close came first.
          response.once('close', () => {
            const before = setSpy.mock.results.length;
            const stream = new SseStream(response, { heartbeatMs: 5 });
            const timer = setSpy.mock.results[before]?.value as NodeJS.Timeout | undefined;
            queueMicrotask(() => resolveChecked({ stopped: timer !== undefined && clearSpy.mock.calls.some(([cleared]) => cleared === timer), closed: stream.closed }));
          });
        },
        async (url) => {
          const controller = new AbortController();
          const answered = fetch(url, { signal: controller.signal }).catch(() => undefined);
          setTimeout(() => controller.abort(), 50);
          await answered;
          expect(await checked).toEqual({ stopped: true, closed: true });
        },
      );
    } finally {
      setSpy.mockRestore();
      clearSpy.mockRestore();
    }
  });

  /** The raw bytes of the response body to a GET sent as `version` (HTTP/1.1 or HTTP/1.0) on a plain socket. */
  async function rawBody(url: string, version: string): Promise<string> {
    const { port } = new URL(url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.write(`GET / ${version}\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`);
    let text = '';
    socket.setEncoding('latin1');
    for await (const chunk of socket) text += chunk as string;
    return text.slice(text.indexOf('\r\n\r\n') + 4);
  }

  const events = [formatSseEvent({ id: '1', event: 'push', data: '{"note":"é 😀"}' }), formatSseEvent({ data: 'plain' }), formatSseEvent({ id: '2', event: 'push', data: '"second"' })];

  it('writes a shared frame as the same bytes as response.write(), in order with it, on a chunked HTTP/1.1 response', async () => {
    const body = (shared: boolean, version: string) =>
      withServer(
        (_request, response) => {
          writeSseHead(response);
          response.flushHeaders();
          const [first = '', second = '', third = ''] = events;
          if (shared) writeSharedFrame(response, shareSseFrame(first));
          else response.write(first);
          response.write(second);
          if (shared) writeSharedFrame(response, shareSseFrame(third));
          else response.write(third);
          response.end();
        },
        (url) => rawBody(url, version),
      );
    const written = await body(false, 'HTTP/1.1');
    expect(written).toContain(`${Buffer.byteLength(events[0] ?? '').toString(16)}\r\n${Buffer.from(events[0] ?? '').toString('latin1')}\r\n`);
    expect(await body(true, 'HTTP/1.1')).toBe(written);
    // HTTP/1.0 has no chunks: the text goes through response.write, unframed.
    const unchunked = await body(true, 'HTTP/1.0');
    expect(unchunked).toBe(Buffer.from(events.join('')).toString('latin1'));
    expect(await body(false, 'HTTP/1.0')).toBe(unchunked);
  });

  it('writes a shared frame through the response while its head is still buffered', async () => {
    const body = await withServer(
      (_request, response) => {
        writeSseHead(response);
        response.cork();
        writeSharedFrame(response, shareSseFrame(events[0] ?? ''));
        response.end();
        response.uncork();
      },
      (url) => rawBody(url, 'HTTP/1.1'),
    );
    const text = Buffer.from(events[0] ?? '').toString('latin1');
    expect(body).toBe(`${Buffer.byteLength(events[0] ?? '').toString(16)}\r\n${text}\r\n0\r\n\r\n`);
  });
});
