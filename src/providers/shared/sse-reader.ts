// Reads an upstream SSE body into whole events. Lines are found in the bytes, and only the values
// Sluice reads (data, event, id) are decoded, each from a whole line: a line end is ASCII, so a
// whole line never ends inside a UTF-8 character, and a character split across network reads is
// decoded only once its line is complete. One leading BOM is dropped. The field rules are the SSE
// spec's (WHATWG §9.2.6) as eventsource-parser reads them; sse-reader.test.ts holds the
// web-platform-tests vectors and every way of splitting a body. Decision 0023 says why this is not
// TextDecoder plus eventsource-parser any more: decoding every read whole, then slicing the text
// into lines, was the largest piece of the stream path's own CPU and garbage.
// Imported: the global Buffer is a getter in Node 20, called on every use (decision 0040).
import { Buffer } from 'node:buffer';
import type { EventSourceMessage } from 'eventsource-parser';
import { SluiceError } from '../../errors/sluice-error.js';

export interface SseReadOptions {
  /** Largest event accepted, in UTF-16 code units of decoded text (≈ bytes for ASCII). */
  maxEventBytes: number;
  provider: string;
}

/**
 * Where a scanner's events go, as they complete. A reader that knows its upstream's commonest event
 * may also read it straight from the bytes (`readDataLine`): a `data:` line that opens an event is
 * offered before it is decoded, and what it returns is handed to `dataLineEvent` if the event ends
 * with that one line; otherwise the line is decoded and joins the event as usual. Decision 0026.
 */
export interface SseSink<T> {
  message(message: EventSourceMessage): void;
  /** The value of `data:` line bytes[start, end) read as a whole event, or undefined to decode it. */
  readDataLine?(bytes: Buffer, start: number, end: number): T | undefined;
  /** A one-line event whose line readDataLine read. */
  dataLineEvent?(value: T): void;
}

const LF = 10;
const CR = 13;
const SPACE = 32;
const COLON = 58;
/** UTF-8 spends at most 3 bytes per UTF-16 code unit (a 4-byte character is 2 units). */
const maxBytesPerUnit = 3;
const dataPrefix = 'data: '.length;
const emptyRead = Buffer.alloc(0);
/** Reads shorter than this are scanned by the JS loop rather than with Buffer#indexOf. */
const minSearchedRead = 128;

/** Decodes whole lines only, so the bytes never end inside a character (U+FFFD for invalid ones). */
export function utf8(bytes: Buffer, start: number, end: number): string {
  return bytes.toString('utf8', start, end);
}

/** The same bytes as a Buffer (no copy), for its native search, compare and decode. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Splits bytes into lines and lines into events, handed to its sink as they complete; one per
 * stream. A sink that throws stops the scanner (the caller stops feeding it).
 */
export class SseScanner<T> {
  readonly #maxEventBytes: number;
  readonly #provider: string;
  /**
   * Bytes an unfinished line may hold before the event is refused. A data line this long decodes
   * to more than maxEventBytes whatever its characters, so this refuses no event that fits. (A
   * comment or `event:` line this long is refused too, but only when it is split across reads.)
   */
  readonly #maxLineBytes: number;
  readonly #sink: SseSink<T>;
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
  /**
   * What the sink read from the event's only line so far, and that line, decoded only if the event
   * turns out to have more to it, or is still open when the read ends (so no read buffer is pinned).
   */
  #lineValue: T | undefined;
  #lineBytes: Buffer = emptyRead;
  #lineStart = 0;
  #lineEnd = 0;

  constructor(options: SseReadOptions, sink: SseSink<T>) {
    this.#sink = sink;
    this.#maxEventBytes = options.maxEventBytes;
    this.#provider = options.provider;
    this.#maxLineBytes = options.maxEventBytes * maxBytesPerUnit + dataPrefix;
  }

  feed(read: Uint8Array): void {
    if (this.failure || read.length === 0) return;
    // A Buffer for the native search below; a tiny read of another kind is scanned as it is.
    const bytes = read.length >= minSearchedRead ? asBuffer(read) : read;
    let position = 0;
    if (this.#skipLf) {
      this.#skipLf = false;
      if (bytes[0] === LF) position = 1;
    }
    const length = bytes.length;
    // Nearly every upstream ends its lines with LF alone: then memchr finds them (Buffer#indexOf),
    // far faster than a loop over every byte in JS once lines are longer than a few bytes. In a
    // tiny read (a byte at a time, say) each native call would cost more than the bytes it skips.
    if (Buffer.isBuffer(bytes) && length - position >= minSearchedRead && bytes.indexOf(CR, position) === -1) {
      // A read that ends with its last line's end (an upstream's usual write: one whole event)
      // needs no search past it.
      while (position < length) {
        const index = bytes.indexOf(LF, position);
        if (index === -1) break;
        this.#completeLine(bytes, position, index);
        if (this.failure) return;
        position = index + 1;
      }
    } else {
      // CR and CRLF too: one plain loop finds every kind of line end in one pass.
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
    }
    if (position < length) this.#hold(bytes, position, length);
    if (this.#lineValue !== undefined) this.#decodeLine();
  }

  /**
   * The body ended: an unfinished line and an undispatched event still count. Decision: an event
   * left without its closing blank line when the upstream closes the stream is still dispatched.
   * Browsers discard it (WHATWG), but several OpenAI-compatible servers end their last event with
   * a single newline, and an upstream reader should lose nothing it was sent.
   */
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

  #readLine(read: Uint8Array, start: number, end: number): void {
    const bytes = asBuffer(read);
    if (this.#firstLine) {
      this.#firstLine = false;
      if (end - start >= 3 && bytes[start] === 0xef && bytes[start + 1] === 0xbb && bytes[start + 2] === 0xbf) start += 3;
    }
    if (start === end) {
      this.#dispatch();
      return;
    }
    const first = bytes[start];
    // A comment.
    if (first === COLON) return;
    if (this.#lineValue !== undefined) this.#decodeLine();
    // `data:` first: nearly every line of an upstream stream is one.
    if (first === 100 && bytes[start + 1] === 97 && bytes[start + 2] === 116 && bytes[start + 3] === 97 && bytes[start + 4] === COLON) {
      const valueStart = bytes[start + 5] === SPACE ? start + 6 : start + 5;
      // A line longer in bytes than maxEventBytes may be too large once decoded: the usual way checks it.
      if (this.#dataLines === 0 && this.#eventType === undefined && this.#id === undefined && this.#sink.readDataLine !== undefined && end - valueStart <= this.#maxEventBytes) {
        const value = this.#sink.readDataLine(bytes, valueStart, end);
        if (value !== undefined) {
          this.#lineValue = value;
          this.#lineBytes = bytes;
          this.#lineStart = valueStart;
          this.#lineEnd = end;
          return;
        }
      }
      this.#addData(utf8(bytes, valueStart, end));
      return;
    }
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

  /** The event goes on past the line the sink read: it joins the event as text after all. */
  #decodeLine(): void {
    this.#lineValue = undefined;
    const bytes = this.#lineBytes;
    this.#lineBytes = emptyRead;
    this.#addData(utf8(bytes, this.#lineStart, this.#lineEnd));
  }

  #addData(value: string): void {
    this.#data = this.#dataLines === 0 ? value : `${this.#data}\n${value}`;
    this.#dataLines++;
    // The event can only grow until it is dispatched, so it is refused as soon as it is too large.
    if (this.#data.length > this.#maxEventBytes) this.#tooLarge();
  }

  #dispatch(): void {
    if (this.#lineValue !== undefined) {
      const value = this.#lineValue;
      this.#lineValue = undefined;
      this.#lineBytes = emptyRead;
      this.#sink.dataLineEvent?.(value);
      return;
    }
    if (this.#dataLines > 0) this.#sink.message({ id: this.#id, event: this.#eventType, data: this.#data });
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
