// What the writer puts on the wire must parse the same in every common client (PROTOCOLS.md,
// "What Sluice writes"): split multi-line data, no CR/LF in event or id, a lone-line heartbeat.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { formatSseEvent, heartbeat, SseStream } from './sse-writer.js';

describe('formatSseEvent', () => {
  it('writes one data line for single-line data', () => {
    expect(formatSseEvent({ data: '{"a":1}' })).toBe('data: {"a":1}\n\n');
  });

  it('splits data on LF, CRLF and CR into several data lines', () => {
    expect(formatSseEvent({ data: 'a\nb\r\nc\rd' })).toBe('data: a\ndata: b\ndata: c\ndata: d\n\n');
  });

  it('writes event, id and retry lines in that order', () => {
    expect(formatSseEvent({ event: 'delta', id: 'gen:1', retry: 3000, data: 'x' })).toBe('event: delta\nid: gen:1\nretry: 3000\ndata: x\n\n');
  });

  it('refuses CR or LF in event and id, NUL in id, and a bad retry', () => {
    expect(() => formatSseEvent({ event: 'a\nb', data: '' })).toThrow(/event must not contain CR or LF/);
    expect(() => formatSseEvent({ id: 'a\rb', data: '' })).toThrow(/id must not contain CR or LF/);
    expect(() => formatSseEvent({ id: 'a\0b', data: '' })).toThrow(/NUL/);
    expect(() => formatSseEvent({ retry: 1.5, data: '' })).toThrow(/retry/);
  });

  it('heartbeat is a comment line with no blank line after it', () => {
    expect(heartbeat).toBe(': ping\n');
  });
});

describe('SseStream', () => {
  it('sends streaming headers, heartbeats on an idle stream, and never compresses', async () => {
    const server = createServer((_request, response) => {
      const stream = new SseStream(response, { heartbeatMs: 30 });
      setTimeout(() => stream.end(formatSseEvent({ data: 'bye' })), 100);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port.toString()}/`, { headers: { 'accept-encoding': 'gzip' } });
      expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      expect(response.headers.get('cache-control')).toContain('no-cache');
      expect(response.headers.get('x-accel-buffering')).toBe('no');
      expect(response.headers.get('content-encoding')).toBeNull();
      const text = await response.text();
      expect(text).toMatch(/^(: ping\n)+data: bye\n\n$/);
    } finally {
      server.close();
    }
  });
});
