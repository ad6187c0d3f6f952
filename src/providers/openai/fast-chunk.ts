// The fast path for the commonest upstream event: a chunk whose delta holds only text. JSON.parse
// of every chunk was the largest single cost of the stream path (decision 0004), yet within one
// stream these chunks differ only in the text: everything before it (id, created, model, …) and
// after it (finish_reason null, usage null, …) repeats. So the reader learns that frame from the
// first text chunk the full parse has read, and afterwards reads a chunk in the same frame with
// two string comparisons. Anything else — role, tool calls, a finish reason, usage, an error, a
// changed frame — takes the full parse. fast-chunk.test.ts checks the two paths agree.
import type { ReadChunk } from './schema.js';

type TextChunk = Extract<ReadChunk, { kind: 'chunk' }>;

const deltaKey = '"delta":{"content":"';
const noToolCalls: readonly never[] = [];
/** Characters that need JSON unescaping or make a string body invalid. */
const needsParse = /["\\\u0000-\u001f]/;

export interface TextChunkReader {
  /** Reads a text-only chunk in the learned frame, or returns undefined (use the full parse). */
  read(data: string): TextChunk | undefined;
  /** Offers a chunk the full parse read, so its frame can be learned. */
  learn(data: string, chunk: ReadChunk): void;
}

/**
 * OpenAI adds `"obfuscation":"<random padding>"` as the last field of every chunk (it hides token
 * lengths on the wire). Its value differs per chunk, so the frame's suffix is learned without it
 * and the field is checked by shape instead.
 */
const obfuscationKey = ',"obfuscation":"';
const obfuscationTail = /^,"obfuscation":"[^"\\]*"\}$/;

export function createTextChunkReader(): TextChunkReader {
  let prefix: string | undefined;
  let suffix = '';
  let obfuscated = false;
  return {
    read(data) {
      if (prefix === undefined || !data.startsWith(prefix)) return undefined;
      let end = data.length;
      if (obfuscated) {
        end = data.lastIndexOf(obfuscationKey);
        if (end < 0 || !obfuscationTail.test(data.slice(end))) return undefined;
      }
      if (data.slice(end - suffix.length, end) !== suffix) return undefined;
      const body = data.slice(prefix.length, end - suffix.length);
      // The body is the string's contents plus the closing `"}` of the delta.
      if (body.length < 2 || body.charCodeAt(body.length - 1) !== 125 || body.charCodeAt(body.length - 2) !== 34) return undefined;
      let content = body.slice(0, -2);
      if (needsParse.test(content)) {
        try {
          content = JSON.parse(`"${content}"`) as string;
        } catch {
          return undefined;
        }
      }
      return { kind: 'chunk', content, toolCalls: noToolCalls, finishReason: undefined, usage: undefined };
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
      prefix = data.slice(0, start);
      suffix = rest;
    },
  };
}
