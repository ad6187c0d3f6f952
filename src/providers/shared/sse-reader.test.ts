// The upstream SSE reader must give the same events however the bytes are cut into reads (whole,
// every 1-byte split, every 2-way split, 1000 random chunkings), follow the SSE spec's line and
// field rules (the web-platform-tests eventsource/ vectors), and refuse oversized events the same
// way however they arrive.
import { describe, expect, it } from 'vitest';
import type { EventSourceMessage } from 'eventsource-parser';
import { SluiceError } from '../../errors/sluice-error.js';
import { SseScanner, type SseSink } from './sse-reader.js';
import { EventBatcher, SseBodyDecoder, type SseEventDecoder } from './body-decoder.js';
import { replayReads } from '../../../test/support/pushed-events.js';
import { seededRandom } from '../../../test/support/seeded-random.js';

const encoder = new TextEncoder();

interface ReadResult {
  events: EventSourceMessage[];
  batches: number;
  error?: unknown;
}

/** Hands each scanned event on as it is, as an `upstream-event`, so the test sees the scanner's messages. */
class MessageRecorder extends EventBatcher implements SseEventDecoder {
  readonly done = false;

  message(message: EventSourceMessage): void {
    this.pending.push({ type: 'upstream-event', data: { ...message } });
  }

  finish(): void {}
}

/** Each part as one network read, through the HTTP shell's body reader, as an upstream's body is read. */
async function readAll(parts: readonly Uint8Array[], maxEventBytes = 1 << 24): Promise<ReadResult> {
  const pushed = await replayReads(new SseBodyDecoder({ maxEventBytes, provider: 'test' }, new MessageRecorder()), parts);
  const events = pushed.events.map((event) => {
    if (event.type !== 'upstream-event') throw new Error(`unexpected ${event.type}`);
    return event.data as EventSourceMessage;
  });
  return { events, batches: pushed.batches.length, ...(pushed.error !== undefined ? { error: pushed.error } : {}) };
}

/** The events of a body read without error. */
async function read(parts: readonly Uint8Array[], maxEventBytes?: number): Promise<EventSourceMessage[]> {
  const { events, error } = await readAll(parts, maxEventBytes);
  expect(error).toBeUndefined();
  return events;
}

const datas = async (text: string) => (await read([encoder.encode(text)])).map((event) => event.data);
const bytesOf = (bytes: Uint8Array) => Array.from(bytes, (byte) => Uint8Array.of(byte));

function splitAt(bytes: Uint8Array, offsets: readonly number[]): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let start = 0;
  for (const offset of [...offsets].sort((a, b) => a - b)) {
    parts.push(bytes.subarray(start, offset));
    start = offset;
  }
  parts.push(bytes.subarray(start));
  return parts;
}

/** Every way §7.4 asks for: whole, every 1-byte split, every 2-way split, 1000 random chunkings. */
function* chunkings(bytes: Uint8Array, seed: number): Generator<[string, Uint8Array[]]> {
  yield ['whole', [bytes]];
  yield ['1-byte reads', bytesOf(bytes)];
  for (let offset = 1; offset < bytes.length; offset++) yield [`split at ${offset.toString()}`, splitAt(bytes, [offset])];
  const next = seededRandom(seed);
  for (let round = 0; round < 1000; round++) {
    const cuts = Array.from({ length: 1 + Math.floor(next() * 16) }, () => Math.floor(next() * (bytes.length + 1)));
    yield [`random chunking ${round.toString()} (seed ${seed.toString()}): ${cuts.join(',')}`, splitAt(bytes, cuts)];
  }
}

describe('the SSE reader: the same events however the body is split', () => {
  // A recorded-style body: CJK and emoji (3- and 4-byte characters), Arabic, comments, named
  // events, ids, multi-line data, data without a space, a leading BOM. Written with each of the
  // three line endings the spec allows.
  const blocks = [
    ['data: {"text":"你好"}'],
    [': keep-alive'],
    ['event: message', 'data: 🙂 emoji'],
    ['data: line one', 'data: line two', 'data:', 'data: line four'],
    ['id: 7', 'data: with id'],
    ['data:no space 😀 مرحبا'],
    ['data: [DONE]'],
  ];
  const expected = [
    { data: '{"text":"你好"}' },
    { event: 'message', data: '🙂 emoji' },
    { data: 'line one\nline two\n\nline four' },
    { id: '7', data: 'with id' },
    { data: 'no space 😀 مرحبا' },
    { data: '[DONE]' },
  ];

  it.each([
    ['LF', '\n'],
    ['CRLF', '\r\n'],
    ['CR', '\r'],
  ])('%s line endings, with a leading BOM', async (_name, lineEnd) => {
    const body = encoder.encode('\uFEFF' + blocks.map((lines) => lines.join(lineEnd) + lineEnd + lineEnd).join(''));
    const whole = await read([body]);
    expect(whole).toEqual(expected);
    const wholeText = whole.map((event) => event.data).join('');
    expect(wholeText).not.toContain('\uFFFD');
    for (const [how, parts] of chunkings(body, lineEnd.length * 31 + lineEnd.charCodeAt(0))) {
      const events = await read(parts);
      // A comparison per chunking keeps the failure message short and names the chunking.
      if (JSON.stringify(events) !== JSON.stringify(whole)) expect(events, how).toEqual(whole);
    }
  });

  it('never produces U+FFFD for a character split at any byte', async () => {
    const body = encoder.encode('data: 你好🙂\n\n');
    for (let offset = 1; offset < body.length; offset++) {
      expect((await read(splitAt(body, [offset]))).map((event) => event.data), `split at ${offset.toString()}`).toEqual(['你好🙂']);
    }
    for (let first = 1; first < body.length; first++) {
      for (let second = first; second < body.length; second++) {
        expect((await read(splitAt(body, [first, second]))).map((event) => event.data)).toEqual(['你好🙂']);
      }
    }
  });

  it('strips a leading BOM once, wherever its three bytes are split', async () => {
    const body = encoder.encode('\uFEFFdata: 1\n\n\uFEFFdata: 2\n\ndata: 3\n\n');
    for (const [how, parts] of [['whole', [body]], ['1-byte reads', bytesOf(body)], ['split at 1', splitAt(body, [1])], ['split at 2', splitAt(body, [2])]] as const) {
      // The second BOM is not at the start of the stream, so it makes the unknown field "\uFEFFdata".
      expect((await read(parts)).map((event) => event.data), how).toEqual(['1', '3']);
    }
  });

  it('treats CR at the end of one read and LF at the start of the next as one line end', async () => {
    // Two line ends here would be a blank line: the event would be dispatched early as "a", then "b".
    expect((await read([encoder.encode('data: a\r'), encoder.encode('\ndata: b\r\n\r\n')])).map((event) => event.data)).toEqual(['a\nb']);
    expect((await read([encoder.encode('data: a\r\n'), encoder.encode('\r\n')])).map((event) => event.data)).toEqual(['a']);
    // A CR at the end of a read followed by a CR is a blank line: the event is dispatched.
    expect((await read([encoder.encode('data: a\r'), encoder.encode('\rdata: b\r\r')])).map((event) => event.data)).toEqual(['a', 'b']);
  });

  it('reads 100 events from one read, and hands them over as one batch', async () => {
    const body = Array.from({ length: 100 }, (_, index) => `data: ${index.toString()}\n\n`).join('');
    const { events, batches } = await readAll([encoder.encode(body)]);
    expect(events.map((event) => event.data)).toEqual(Array.from({ length: 100 }, (_, index) => index.toString()));
    expect(batches).toBe(1);
  });

  it('reads one 1 MiB data line fed in 1-byte reads, in linear time', async () => {
    const body = encoder.encode(`data: ${'x'.repeat(1 << 20)}\n\n`);
    const started = performance.now();
    // Straight into the scanner: a million stream reads would measure the stream, not the scanner.
    const events: EventSourceMessage[] = [];
    const scanner = new SseScanner<never>({ maxEventBytes: 1 << 24, provider: 'test' }, { message: (message) => events.push(message) });
    for (const part of bytesOf(body)) scanner.feed(part);
    scanner.finish();
    const elapsedMs = performance.now() - started;
    expect(scanner.failure).toBeUndefined();
    expect(events).toHaveLength(1);
    expect(events[0]?.data).toBe('x'.repeat(1 << 20));
    // About 0.3 s measured; a quadratic buffer (a string concatenated per read) takes minutes.
    expect(elapsedMs).toBeLessThan(5000);
  });
});

describe('the SSE reader: maxEventBytes', () => {
  const maxEventBytes = 64;
  const isTooLarge = (error: unknown) => error instanceof SluiceError && error.code === 'upstream_event_too_large';

  it('refuses an event larger than maxEventBytes with upstream_event_too_large, naming the setting', async () => {
    const { error } = await readAll([encoder.encode(`data: ${'x'.repeat(5000)}\n\n`)], 1000);
    expect(isTooLarge(error)).toBe(true);
    expect((error as SluiceError).message).toContain('maxEventBytes');
    expect((error as SluiceError).provider).toBe('test');
  });

  it('counts every data line of an event, not each line alone', async () => {
    const line = 'x'.repeat(40);
    const { error } = await readAll([encoder.encode(`data: ${line}\ndata: ${line}\n\n`)], maxEventBytes);
    expect(isTooLarge(error)).toBe(true);
  });

  it('accepts an event of exactly maxEventBytes and refuses one more, however the body is split', async () => {
    const fits = encoder.encode(`data: ${'x'.repeat(maxEventBytes)}\n\n`);
    const over = encoder.encode(`data: ${'x'.repeat(maxEventBytes + 1)}\n\n`);
    for (const [how, parts] of chunkings(fits, 5)) {
      const { events, error } = await readAll(parts, maxEventBytes);
      expect(error, how).toBeUndefined();
      expect(events.map((event) => event.data.length), how).toEqual([maxEventBytes]);
    }
    for (const [how, parts] of chunkings(over, 6)) expect(isTooLarge((await readAll(parts, maxEventBytes)).error), how).toBe(true);
  });

  it('limits each event, not the stream: many events under the limit pass', async () => {
    const body = encoder.encode(Array.from({ length: 200 }, () => `data: ${'y'.repeat(maxEventBytes)}\n\n`).join(''));
    expect(await read([body], maxEventBytes)).toHaveLength(200);
  });

  it('delivers the events before an oversized one, however the body is split', async () => {
    const body = encoder.encode(`data: a\n\ndata: b\n\ndata: ${'x'.repeat(maxEventBytes + 10)}\n\ndata: after\n\n`);
    for (const [how, parts] of chunkings(body, 9)) {
      const { events, error } = await readAll(parts, maxEventBytes);
      expect(isTooLarge(error), how).toBe(true);
      expect(events.map((event) => event.data), how).toEqual(['a', 'b']);
    }
  });
});

describe('the SSE reader: end of stream', () => {
  // Documented decision in sse-reader.ts: unlike a browser, the upstream reader dispatches a last
  // event that lacks its closing blank line.
  it('dispatches a last event that lacks its blank line', async () => {
    expect(await datas('data: a\n\ndata: b\n')).toEqual(['a', 'b']);
    expect(await datas('data: a\n\ndata: b\r')).toEqual(['a', 'b']);
    expect(await datas('data: a\n\ndata: b\r\n')).toEqual(['a', 'b']);
    expect(await datas('data: a\n\ndata: b')).toEqual(['a', 'b']);
    expect(await datas('data: a\ndata: b')).toEqual(['a\nb']);
  });

  it('adds nothing at the end of a complete stream, and nothing for an empty one', async () => {
    expect(await datas('data: a\n\n')).toEqual(['a']);
    expect(await datas('data: a\n\n\n\n')).toEqual(['a']);
    expect(await datas(': only a comment\n')).toEqual([]);
    expect(await read([])).toEqual([]);
  });

  it('passes on a failure of the body itself, after the events read before it', async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield encoder.encode('data: a\n\n');
      throw new Error('socket closed');
    }
    const pushed = await replayReads(new SseBodyDecoder({ maxEventBytes: 1000, provider: 'test' }, new MessageRecorder()), failing());
    expect(pushed.events.map((event) => (event.type === 'upstream-event' ? (event.data as { data: string }).data : ''))).toEqual(['a']);
    expect(pushed.error).toBeInstanceOf(SluiceError);
    expect((pushed.error as SluiceError).code).toBe('upstream_error');
    expect((pushed.error as SluiceError).message).toContain('socket closed');
  });
});

// web-platform-tests eventsource/ vectors that test a parser
// (https://github.com/web-platform-tests/wpt/tree/master/eventsource, the format-* tests), each fed
// whole and one byte per read. Differences from a browser are marked; where the reader follows
// eventsource-parser (the SSE parser of src/client and of the Vercel AI SDK), it says so.
type Expected = Partial<EventSourceMessage>;
const vectors: [string, string, Expected[]][] = [
  ['format-bom', '\uFEFFdata:1\n\n\uFEFFdata:2\n\ndata:3\n\n\n', [{ data: '1' }, { data: '3' }]],
  ['format-bom-2', '\uFEFF\uFEFFdata:1\n\ndata:2\n\ndata:3\n\n\n', [{ data: '2' }, { data: '3' }]],
  ['format-comments', `data:1\r:\0\n:\r\ndata:2\n:${'x'.repeat(2048)}\rdata:3\n:data:fail\r:${'x'.repeat(2048)}\ndata:4\n\n`, [{ data: '1\n2\n3\n4' }]],
  ['format-field-data', 'data:\n\ndata\ndata\n\ndata:test\n\n\n', [{ data: '' }, { data: '\n' }, { data: 'test' }]],
  // Like eventsource-parser, the reader leaves `event` undefined where a browser says "message".
  ['format-field-event', 'event:test\ndata:x\n\ndata:x\n\n\n', [{ event: 'test', data: 'x' }, { event: undefined, data: 'x' }]],
  ['format-field-event-empty', 'event: \ndata:data\n\n\n', [{ event: undefined, data: 'data' }]],
  ['format-field-id', 'id: \u2026\nretry: 200\ndata: hello\n\n', [{ id: '\u2026', data: 'hello' }]],
  // Like eventsource-parser, the reader reports each event's own id; a browser keeps the last id for later events
  // (it would say 1, 2, 2). Sluice reads no upstream ids, so this difference does not matter.
  ['format-field-id-3', 'id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n', [{ id: '1', data: '1' }, { id: '2', data: '2' }, { id: undefined, data: '3' }]],
  ['format-field-id-null', 'id: \0\0\nretry: 200\ndata: hello\n\n', [{ id: undefined, data: 'hello' }]],
  ['format-field-parsing', 'data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n', [{ data: '\0\n 2\n1\n3\n\n4' }]],
  ['format-field-retry', 'retry:02000\ndata:x', [{ data: 'x' }]],
  ['format-field-retry-bogus', 'retry:2000\nretry:1000x\ndata:x', [{ data: 'x' }]],
  ['format-field-retry-empty', 'retry\ndata:test\n\n\n', [{ data: 'test' }]],
  ['format-field-unknown', 'data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n\n', [{ data: 'test\n\ntest' }]],
  ['format-leading-space', 'data:\ttest\rdata: \ndata:test\n\n\n', [{ data: '\ttest\n\ntest' }]],
  ['format-newlines', 'data:test\r\ndata\ndata:test\r\n\r\n', [{ data: 'test\n\ntest' }]],
  ['format-null-character', 'data:\0\n\n', [{ data: '\0' }]],
  ['format-utf-8', 'data:ok\u2026\n\n', [{ data: 'ok\u2026' }]],
  // A browser discards the unterminated second event; this reader dispatches it (decision above).
  ['format-data-before-final-empty-line', 'retry:1000\ndata:test1\n\nid:test\ndata:test2\n', [{ data: 'test1' }, { id: 'test', data: 'test2' }]],
];

describe('the SSE reader: WPT parser vectors', () => {
  it.each(vectors)('%s', async (_name, input, expected) => {
    const body = encoder.encode(input);
    const normalise = (events: EventSourceMessage[]) => events.map(({ id, event, data }) => ({ id, event, data }));
    const want = expected.map(({ id, event, data }) => ({ id, event, data }));
    expect(normalise(await read([body]))).toEqual(want);
    expect(normalise(await read(bytesOf(body)))).toEqual(want);
  });
});

describe('SseScanner: a sink that reads one-line data events from their bytes', () => {
  interface Seen {
    how: 'line' | 'message';
    data: string;
    event?: string | undefined;
    id?: string | undefined;
  }

  /** Every event, read with a sink whose readDataLine takes each line that starts with `{`. */
  function scan(parts: readonly Uint8Array[], shortcut: boolean): Seen[] {
    const seen: Seen[] = [];
    const sink: SseSink<string> = {
      message: (message) => seen.push({ how: 'message', data: message.data, event: message.event, id: message.id }),
      ...(shortcut
        ? {
            readDataLine: (bytes: Buffer, start: number, end: number) => (bytes[start] === 123 ? bytes.toString('utf8', start, end) : undefined),
            dataLineEvent: (data: string) => seen.push({ how: 'line', data }),
          }
        : {}),
    };
    const scanner = new SseScanner<string>({ maxEventBytes: 1 << 20, provider: 'test' }, sink);
    for (const part of parts) scanner.feed(part);
    scanner.finish();
    expect(scanner.failure).toBeUndefined();
    return seen;
  }

  // One-line events the shortcut takes, and the cases where it must give the line back: a second
  // data line, an id or event line after it, an id or event before it, a comment in between (which
  // does not), CRLF and CR. An event still open when a read ends is given back too (no read buffer
  // is kept for it), like the last one here, which the body ends without its blank line.
  const body = encoder.encode(
    [
      'data: {"a":"你好🙂"}\n\n',
      'data: {"b":1}\ndata: {"c":2}\n\n',
      'data: {"d":1}\nid: 7\n\n',
      'data: {"e":1}\nevent: error\n\n',
      'id: 8\ndata: {"f":1}\n\n',
      'event: x\ndata: {"g":1}\n\n',
      'data: {"h":1}\n: comment\n\n',
      'data: [DONE]\n\n',
      'data: {"i":"crlf"}\r\n\r\n',
      'data: {"j":"cr"}\r\r',
      'data: {"k":"last"}\n',
    ].join(''),
  );
  const plain = scan([body], false);

  it('takes whole one-line events and gives the others back as text, the same events in the same order', () => {
    const taken = scan([body], true);
    expect(taken.filter((seen) => seen.how === 'line').map((seen) => seen.data)).toEqual(['{"a":"你好🙂"}', '{"h":1}', '{"i":"crlf"}', '{"j":"cr"}']);
    expect(taken.map(({ data, event, id }) => ({ data, event, id }))).toEqual(plain.map(({ data, event, id }) => ({ data, event, id })));
  });

  it('gives the same events however the bytes are cut into reads', () => {
    const expected = JSON.stringify(plain.map(({ data, event, id }) => ({ data, event, id })));
    for (const [name, parts] of chunkings(body, 26)) {
      const events = JSON.stringify(scan(parts, true).map(({ data, event, id }) => ({ data, event, id })));
      if (events !== expected) expect(events, name).toBe(expected);
    }
  });

  it('leaves a line longer than maxEventBytes to the usual check, which refuses it', () => {
    const seen: string[] = [];
    const scanner = new SseScanner<string>({ maxEventBytes: 8, provider: 'test' }, { message: (message) => seen.push(message.data), readDataLine: (bytes, start, end) => bytes.toString('utf8', start, end), dataLineEvent: (data) => seen.push(data) });
    scanner.feed(encoder.encode('data: {"x":"123456789"}\n\n'));
    expect(scanner.failure?.code).toBe('upstream_event_too_large');
    expect(seen).toEqual([]);
  });
});
