// The fast path for the commonest upstream event: a chunk whose delta holds only text. JSON.parse
// of every chunk was the largest single cost of the stream path (decision 0004), yet within one
// stream these chunks differ only in the text: everything before it (id, created, model, …) and
// after it (finish_reason null, usage null, …) repeats. So the reader learns that frame from the
// first text chunk the full parse has read, and afterwards reads a chunk in the same frame from
// the line's bytes: two byte comparisons, and only the text decoded, never the whole line
// (decision 0026). Anything else — role, tool calls, a finish reason, usage, an error, a changed
// frame — takes the full parse. fast-chunk.test.ts checks the two paths agree.
// Imported: the global Buffer is a getter in Node 20, called on every use (decision 0040).
import { Buffer } from 'node:buffer';
import type { ReadChunk } from './schema.js';
import { utf8 } from '../shared/sse-reader.js';

const deltaKey = '"delta":{"content":"';
const QUOTE = 34;
const BACKSLASH = 92;
const CLOSE_BRACE = 125;
const SPACE = 32;

export interface TextChunkReader {
  /**
   * The text of a text-only chunk in the learned frame, the chunk being bytes[start, end) (the
   * `data` value of its line), or undefined (use the full parse).
   */
  read(bytes: Buffer, start: number, end: number): string | undefined;
  /** Offers a chunk the full parse read, so its frame can be learned. */
  learn(data: string, chunk: ReadChunk): void;
}

/**
 * OpenAI adds `"obfuscation":"<random padding>"` as the last field of every chunk (it hides token
 * lengths on the wire). Its value differs per chunk, so the frame's suffix is learned without it
 * and the field is checked by shape instead.
 */
const obfuscationKey = ',"obfuscation":"';
const obfuscationKeyBytes = Buffer.from(obfuscationKey);
const obfuscationTail = /^,"obfuscation":"[^"\\]*"\}$/;

export function createTextChunkReader(): TextChunkReader {
  let prefix: Buffer | undefined;
  let suffix: Buffer = Buffer.alloc(0);
  let obfuscated = false;
  return {
    read(bytes, start, end) {
      if (prefix === undefined) return undefined;
      const textStart = start + prefix.length;
      // The text's closing `"}` and the suffix must fit after the prefix.
      if (textStart + 2 + suffix.length > end) return undefined;
      if (!sameBytes(bytes, start, prefix)) return undefined;
      let stop = end;
      if (obfuscated) {
        stop = obfuscationStart(bytes, textStart, end);
        if (stop < textStart + 2 + suffix.length) return undefined;
      }
      const suffixAt = stop - suffix.length;
      if (!sameBytes(bytes, suffixAt, suffix)) return undefined;
      // Between prefix and suffix: the string's contents, then the `"}` that closes the delta.
      const textEnd = suffixAt - 2;
      if (bytes[textEnd] !== QUOTE || bytes[textEnd + 1] !== CLOSE_BRACE) return undefined;
      let plain = true;
      for (let index = textStart; index < textEnd; index++) {
        const byte = bytes[index] as number;
        if (byte === QUOTE || byte === BACKSLASH || byte < SPACE) {
          plain = false;
          break;
        }
      }
      const text = utf8(bytes, textStart, textEnd);
      if (plain) return text;
      // Escapes to undo, or an unescaped quote or control character: then the chunk is not one
      // string there (or not JSON at all), and the full parse decides.
      try {
        return JSON.parse(`"${text}"`) as string;
      } catch {
        return undefined;
      }
    },
    learn(data, chunk) {
      if (prefix !== undefined || chunk.kind !== 'chunk' || chunk.content === undefined) return;
      if (chunk.toolCalls.length > 0 || chunk.finishReason !== undefined || chunk.usage !== undefined) return;
      const keyAt = data.indexOf(deltaKey);
      // The full parse saw exactly this text; find where its JSON form ends in the raw chunk.
      const encoded = JSON.stringify(chunk.content).slice(1, -1);
      if (keyAt < 0) return;
      const start = keyAt + deltaKey.length;
      if (data.slice(start, start + encoded.length) !== encoded || data.slice(start + encoded.length, start + encoded.length + 2) !== '"}') return;
      let rest = data.slice(start + encoded.length + 2);
      const obfuscationAt = rest.lastIndexOf(obfuscationKey);
      obfuscated = obfuscationAt >= 0 && obfuscationTail.test(rest.slice(obfuscationAt));
      if (obfuscated) rest = rest.slice(0, obfuscationAt);
      // Compared as bytes from now on: a frame holding U+FFFD (from invalid UTF-8) matches nothing.
      prefix = Buffer.from(data.slice(0, start));
      suffix = Buffer.from(rest);
    },
  };
}

/**
 * Below this many bytes a JS loop compares faster than Buffer#compare, whose call into C++ costs
 * about 70 ns before its memcmp starts (bench of 2026-12-05: a 40-byte suffix 35 ns by the loop,
 * 70 by compare; a 141-byte prefix 116 ns by the loop, 77 by compare).
 */
const loopCompareBelow = 80;

/** True when bytes[at, at + expected.length) are `expected`; the caller checked they fit. */
function sameBytes(bytes: Buffer, at: number, expected: Buffer): boolean {
  const length = expected.length;
  if (length >= loopCompareBelow) return bytes.compare(expected, 0, length, at, at + length) === 0;
  for (let index = 0; index < length; index++) if (bytes[at + index] !== expected[index]) return false;
  return true;
}

/**
 * Where `,"obfuscation":"<no quote or backslash>"}` starts, that field ending the chunk
 * bytes[from, end); -1 when the chunk does not end so.
 */
function obfuscationStart(bytes: Buffer, from: number, end: number): number {
  if (bytes[end - 1] !== CLOSE_BRACE || bytes[end - 2] !== QUOTE) return -1;
  let quoteAt = end - 3;
  while (quoteAt >= from && bytes[quoteAt] !== QUOTE) {
    if (bytes[quoteAt] === BACKSLASH) return -1;
    quoteAt--;
  }
  const keyAt = quoteAt + 1 - obfuscationKeyBytes.length;
  if (keyAt < from) return -1;
  for (let index = 0; index < obfuscationKeyBytes.length; index++) if (bytes[keyAt + index] !== obfuscationKeyBytes[index]) return -1;
  return keyAt;
}
