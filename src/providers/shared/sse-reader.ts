// Reads an upstream SSE body into whole events. Lines are found in the bytes, and only the values
// Sluice reads (data, event, id) are decoded, each from a whole line: a line end is ASCII, so a
// whole line never ends inside a UTF-8 character, and a character split across network reads is
// decoded only once its line is complete. One leading BOM is dropped. The field rules are the SSE
// spec's (WHATWG §9.2.6) as eventsource-parser reads them; sse-reader.test.ts holds the
// web-platform-tests vectors and every way of splitting a body. Decision 0023 says why this is not
// TextDecoder plus eventsource-parser any more: decoding every read whole, then slicing the text
// into lines, was the largest piece of the stream path's own CPU and garbage.
import { Readable } from 'node:stream';
import type { EventSourceMessage } from 'eventsource-parser';
import { SluiceError } from '../../errors/sluice-error.js';

export interface SseReadOptions {
  /** Largest event accepted, in UTF-16 code units of decoded text (≈ bytes for ASCII). */
  maxEventBytes: number;
  provider: string;
}

/**
 * Yields the complete events of an SSE body, one array per network read that completed any.
 *
 * Decision: an event left without its closing blank line when the upstream closes the stream is
 * still dispatched. Browsers discard it (WHATWG), but several OpenAI-compatible servers end their
 * last event with a single newline, and an upstream reader should lose nothing it was sent.
 *
 * A Node stream is read without being destroyed when the consumer stops early: its owner
 * (http-upstream.ts) ends it, and after a complete answer lets it finish instead, so the normal end
 * of a stream constructs no AbortError.
 */
export async function* readSseEvents(body: AsyncIterable<Uint8Array>, options: SseReadOptions): AsyncGenerator<EventSourceMessage[]> {
  const scanner = new SseScanner(options);
  const reads: AsyncIterable<Uint8Array> = body instanceof Readable ? (body.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>) : body;
  for await (const chunk of reads) {
    scanner.feed(chunk);
    // Events completed before a failure in the same read are still delivered, as they would be
    // had the failing event arrived in a later read.
    const batch = scanner.take();
    if (batch !== undefined) yield batch;
    if (scanner.failure) throw scanner.failure;
  }
  scanner.finish();
  const batch = scanner.take();
  if (batch !== undefined) yield batch;
  if (scanner.failure) throw scanner.failure;
}

const LF = 10;
const CR = 13;
const SPACE = 32;
const COLON = 58;
/** UTF-8 spends at most 3 bytes per UTF-16 code unit (a 4-byte character is 2 units). */
const maxBytesPerUnit = 3;
const dataPrefix = 'data: '.length;
const emptyRead = new Uint8Array(0);

/** Decodes whole lines only, so the bytes never end inside a character (U+FFFD for invalid ones). */
function utf8(bytes: Uint8Array, start: number, end: number): string {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return buffer.toString('utf8', start, end);
}

/** Splits bytes into lines and lines into events; one per stream. */
class SseScanner {
  readonly #maxEventBytes: number;
  readonly #provider: string;
  /**
   * Bytes an unfinished line may hold before the event is refused. A data line this long decodes
   * to more than maxEventBytes whatever its characters, so this refuses no event that fits. (A
   * comment or `event:` line this long is refused too, but only when it is split across reads.)
   */
  readonly #maxLineBytes: number;
  #ready: EventSourceMessage[] = [];
  failure: SluiceError | undefined;
  /**
   * The unfinished line's bytes from earlier reads: a copy (no network buffer is kept alive), in a
   * buffer that doubles as needed, so a long line fed in tiny reads costs linear time.
   */
  #pending: Buffer | undefined;
  #pendingBytes = 0;
  /** The last read ended with CR: an LF at the start of the next one ends the same line. */
  #skipLf = false;
  #firstLine = true;
  #data = '';
  #dataLines = 0;
  #eventType: string | undefined;
  #id: string | undefined;

  constructor(options: SseReadOptions) {
    this.#maxEventBytes = options.maxEventBytes;
    this.#provider = options.provider;
    this.#maxLineBytes = options.maxEventBytes * maxBytesPerUnit + dataPrefix;
  }

  /** The events completed so far, or undefined when there are none. */
  take(): EventSourceMessage[] | undefined {
    if (this.#ready.length === 0) return undefined;
    const batch = this.#ready;
    this.#ready = [];
    return batch;
  }

  feed(bytes: Uint8Array): void {
    if (this.failure || bytes.length === 0) return;
    let position = 0;
    if (this.#skipLf) {
      this.#skipLf = false;
      if (bytes[0] === LF) position = 1;
    }
    // A plain loop finds both line ends in one pass; V8 compiles it to a tight scan, and unlike
    // Buffer#indexOf it costs nothing per call, which matters when reads are tiny.
    const length = bytes.length;
    for (let index = position; index < length; index++) {
      const byte = bytes[index];
      if (byte !== LF && byte !== CR) continue;
      this.#completeLine(bytes, position, index);
      if (this.failure) return;
      if (byte === CR) {
        if (index + 1 === length) this.#skipLf = true;
        else if (bytes[index + 1] === LF) index++;
      }
      position = index + 1;
    }
    if (position < length) this.#hold(bytes, position, length);
  }

  /** The body ended: an unfinished line and an undispatched event still count (decision above). */
  finish(): void {
    if (this.failure) return;
    if (this.#pendingBytes > 0) this.#completeLine(emptyRead, 0, 0);
    if (!this.failure) this.#dispatch();
  }

  #hold(bytes: Uint8Array, from: number, to: number): void {
    const needed = this.#pendingBytes + to - from;
    if (this.#pending === undefined || this.#pending.length < needed) {
      const grown = Buffer.allocUnsafe(Math.max(needed, 2 * (this.#pending?.length ?? 0), 256));
      this.#pending?.copy(grown, 0, 0, this.#pendingBytes);
      this.#pending = grown;
    }
    this.#pending.set(from === 0 && to === bytes.length ? bytes : bytes.subarray(from, to), this.#pendingBytes);
    this.#pendingBytes = needed;
    if (this.#pendingBytes > this.#maxLineBytes) this.#tooLarge();
  }

  #completeLine(bytes: Uint8Array, start: number, end: number): void {
    if (this.#pendingBytes === 0) {
      this.#readLine(bytes, start, end);
      return;
    }
    this.#hold(bytes, start, end);
    const line = this.#pending;
    const length = this.#pendingBytes;
    this.#pending = undefined;
    this.#pendingBytes = 0;
    if (line !== undefined && !this.failure) this.#readLine(line, 0, length);
  }

  #readLine(bytes: Uint8Array, start: number, end: number): void {
    if (this.#firstLine) {
      this.#firstLine = false;
      if (end - start >= 3 && bytes[start] === 0xef && bytes[start + 1] === 0xbb && bytes[start + 2] === 0xbf) start += 3;
    }
    if (start === end) {
      this.#dispatch();
      return;
    }
    const first = bytes[start];
    // `data:` first: nearly every line of an upstream stream is one.
    if (first === 100 && bytes[start + 1] === 97 && bytes[start + 2] === 116 && bytes[start + 3] === 97 && bytes[start + 4] === COLON) {
      this.#addData(utf8(bytes, bytes[start + 5] === SPACE ? start + 6 : start + 5, end));
      return;
    }
    // A comment.
    if (first === COLON) return;
    const line = utf8(bytes, start, end);
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(line.charCodeAt(colon + 1) === SPACE ? colon + 2 : colon + 1);
    switch (field) {
      case 'data':
        this.#addData(value);
        break;
      case 'event':
        this.#eventType = value || undefined;
        break;
      case 'id':
        if (!value.includes('\0')) this.#id = value;
        break;
      default:
      // `retry` (Sluice does not reconnect upstream) and unknown fields are ignored, as the spec says.
    }
  }

  #addData(value: string): void {
    this.#data = this.#dataLines === 0 ? value : `${this.#data}\n${value}`;
    this.#dataLines++;
    // The event can only grow until it is dispatched, so it is refused as soon as it is too large.
    if (this.#data.length > this.#maxEventBytes) this.#tooLarge();
  }

  #dispatch(): void {
    if (this.#dataLines > 0) this.#ready.push({ id: this.#id, event: this.#eventType, data: this.#data });
    this.#id = undefined;
    this.#eventType = undefined;
    this.#data = '';
    this.#dataLines = 0;
  }

  #tooLarge(): void {
    this.failure ??= new SluiceError('upstream_event_too_large', {
      provider: this.#provider,
      message: `Provider "${this.#provider}" sent an event larger than ${this.#maxEventBytes.toString()} bytes (maxEventBytes); raise the limit in the provider's config if this is expected.`,
    });
  }
}
