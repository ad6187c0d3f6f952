// The upstream SSE reader must give the same events however the bytes are cut into reads
// (PROTOCOLS-NOTES §7.4), follow the SSE spec's line and field rules (WPT vectors, §6.6), and
// refuse oversized events.
import { describe, expect, it } from 'vitest';
import type { EventSourceMessage } from 'eventsource-parser';
import { SluiceError } from '../../errors/sluice-error.js';
import { readSseEvents } from './sse-reader.js';

const encoder = new TextEncoder();

async function* chunks(parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) {
    await Promise.resolve();
    yield part;
  }
}

async function read(parts: Uint8Array[], maxEventBytes = 1 << 24): Promise<EventSourceMessage[]> {
  const events: EventSourceMessage[] = [];
  for await (const batch of readSseEvents(chunks(parts), { maxEventBytes, provider: 'test' })) events.push(...batch);
  return events;
}

const whole = (text: string) => read([encoder.encode(text)]);
const datas = async (text: string) => (await whole(text)).map((event) => event.data);

function splitAt(bytes: Uint8Array, offsets: number[]): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let start = 0;
  for (const offset of [...offsets].sort((a, b) => a - b)) {
    parts.push(bytes.subarray(start, offset));
    start = offset;
  }
  parts.push(bytes.subarray(start));
  return parts;
}

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const fixture = [
  'data: {"text":"你好"}\n\n',
  'event: message\r\ndata: 🙂 emoji\r\n\r\n',
  ': a comment\n',
  'data: line one\ndata: line two\n\n',
  'id: 7\rdata: cr only\r\r',
  'data:no space 😀 مرحبا\n\n',
  'data: [DONE]\n\n',
].join('');

describe('readSseEvents: splitting', () => {
  const bytes = encoder.encode(fixture);

  it('reads the fixture whole', async () => {
    expect((await read([bytes])).map((event) => event.data)).toEqual(['{"text":"你好"}', '🙂 emoji', 'line one\nline two', 'cr only', 'no space 😀 مرحبا', '[DONE]']);
  });

  it('gives the same events for every 1-byte split, every 2-way split, and 1000 random chunkings', async () => {
    const expected = await read([bytes]);
    expect(await read(Array.from(bytes, (byte) => Uint8Array.of(byte)))).toEqual(expected);
    for (let offset = 1; offset < bytes.length; offset++) expect(await read(splitAt(bytes, [offset]))).toEqual(expected);
    const next = random(7);
    for (let round = 0; round < 1000; round++) {
      const cuts = Array.from({ length: 1 + Math.floor(next() * 12) }, () => 1 + Math.floor(next() * (bytes.length - 1)));
      const events = await read(splitAt(bytes, cuts));
      expect(events).toEqual(expected);
    }
  });

  it('never produces U+FFFD for characters split at any byte', async () => {
    const text = encoder.encode('data: 你好🙂\n\n');
    for (let offset = 1; offset < text.length; offset++) {
      const events = await read(splitAt(text, [offset]));
      expect(events.map((event) => event.data)).toEqual(['你好🙂']);
    }
  });

  it('treats CR at the end of one read and LF at the start of the next as one line end', async () => {
    const events = await read([encoder.encode('data: a\r'), encoder.encode('\ndata: b\r\n\r\n')]);
    expect(events.map((event) => event.data)).toEqual(['a\nb']);
  });

  it('reads 100 events from one read', async () => {
    const text = Array.from({ length: 100 }, (_, index) => `data: ${index.toString()}\n\n`).join('');
    expect((await datas(text)).length).toBe(100);
  });

  it('reads a 1 MiB line fed in 1 KiB pieces in linear time', async () => {
    const line = encoder.encode(`data: ${'x'.repeat(1 << 20)}\n\n`);
    const parts: Uint8Array[] = [];
    for (let offset = 0; offset < line.length; offset += 1024) parts.push(line.subarray(offset, offset + 1024));
    const started = performance.now();
    const events = await read(parts);
    expect(events[0]?.data.length).toBe(1 << 20);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe('readSseEvents: limits and end of stream', () => {
  it('refuses an event larger than maxEventBytes', async () => {
    const error = await read([encoder.encode(`data: ${'x'.repeat(5000)}\n\n`)], 1000).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as SluiceError).code).toBe('upstream_event_too_large');
  });

  it('dispatches a last event that lacks its blank line (tolerant upstream reading)', async () => {
    expect(await datas('data: a\n\ndata: b\n')).toEqual(['a', 'b']);
    expect(await datas('data: a\n\ndata: b')).toEqual(['a', 'b']);
  });
});

describe('readSseEvents: WPT parser vectors (PROTOCOLS-NOTES §6.6)', () => {
  it('format-bom: one leading BOM is stripped, a second makes an unknown field', async () => {
    expect(await datas('\uFEFFdata:1\n\n\uFEFFdata:2\n\ndata:3\n\n\n')).toEqual(['1', '3']);
    expect(await datas('\uFEFF\uFEFFdata:1\n\ndata:2\n\ndata:3\n\n\n')).toEqual(['2', '3']);
  });

  it('format-comments', async () => {
    const long = 'x'.repeat(2048);
    expect(await datas(`data:1\r:\0\n:\r\ndata:2\n:${long}\rdata:3\n:data:fail\r:${long}\ndata:4\n\n`)).toEqual(['1\n2\n3\n4']);
  });

  it('format-field-data', async () => {
    expect(await datas('data:\n\ndata\ndata\n\ndata:test\n\n\n')).toEqual(['', '\n', 'test']);
  });

  it('format-field-event and format-field-event-empty', async () => {
    const events = await whole('event:test\ndata:x\n\ndata:x\n\n\n');
    expect(events.map((event) => event.event)).toEqual(['test', undefined]);
    // eventsource-parser leaves an empty event name undefined where browsers say "message".
    expect((await whole('event: \ndata:data\n\n\n')).map((event) => [event.event || undefined, event.data])).toEqual([[undefined, 'data']]);
  });

  it('format-field-id-3: ids persist and an empty id resets', async () => {
    expect((await whole('id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n')).map((event) => event.id)).toEqual(['1', '2', undefined]);
  });

  it('format-field-parsing: one space stripped, case-sensitive, NUL kept, mixed line endings', async () => {
    expect(await datas('data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n')).toEqual(['\0\n 2\n1\n3\n\n4']);
  });

  it('format-field-unknown, format-leading-space, format-newlines, format-null-character', async () => {
    expect(await datas('data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n\n')).toEqual(['test\n\ntest']);
    expect(await datas('data:\ttest\rdata: \ndata:test\n\n\n')).toEqual(['\ttest\n\ntest']);
    expect(await datas('data:test\r\ndata\ndata:test\r\n\r\n')).toEqual(['test\n\ntest']);
    expect(await datas('data:\0\n\n')).toEqual(['\0']);
  });

  it('format-field-retry-bogus and -empty do not break parsing', async () => {
    expect(await datas('retry:2000\nretry:1000x\ndata:x\n\n')).toEqual(['x']);
    expect(await datas('retry\ndata:test\n\n\n')).toEqual(['test']);
  });
});
