import { describe, expect, it } from 'vitest';
import { createTextChunkReader, type TextChunkReader } from './fast-chunk.js';
import { readChunk, type ReadChunk } from './schema.js';
import { seededRandom } from '../../../test/support/seeded-random.js';

/**
 * Reads `data` as the reader meets it: as UTF-8 bytes in the middle of a larger read (the line's
 * `data: ` before it, the next line after), and returns what the full parse would have made of it.
 */
function readFast(reader: TextChunkReader, data: string): ReadChunk | undefined {
  const before = Buffer.from('data: {"x":1}\n\ndata: ');
  const bytes = Buffer.concat([before, Buffer.from(data), Buffer.from('\n\ndata: [DONE]\n\n')]);
  const text = reader.read(bytes, before.length, bytes.length - '\n\ndata: [DONE]\n\n'.length);
  return text === undefined ? undefined : { kind: 'chunk', content: text, toolCalls: [], finishReason: undefined, usage: undefined };
}

const alphabet = ['a', ' ', '"', '\\', '\n', '\u0000', 'é', '你', '🙂', '"delta":{"content":"', '"}', '"finish_reason":null', '\u2028', '/'];

function randomText(next: () => number): string {
  let text = '';
  const length = Math.floor(next() * 12);
  for (let index = 0; index < length; index++) text += alphabet[Math.floor(next() * alphabet.length)] ?? '';
  return text;
}

function chunkOf(delta: Record<string, unknown>, finishReason: string | null, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }], usage: null, ...extra });
}

describe('fast text-chunk reader', () => {
  it('agrees with the full parse on generated streams, hostile text included', () => {
    const next = seededRandom(42);
    let taken = 0;
    for (let stream = 0; stream < 200; stream++) {
      const reader = createTextChunkReader();
      for (let round = 0; round < 40; round++) {
        const text = randomText(next);
        const variant = Math.floor(next() * 9);
        const data =
          variant <= 2 ? chunkOf({ content: text }, null)
          : variant === 3 ? chunkOf({ role: 'assistant', content: text }, null)
          : variant === 4 ? chunkOf({ content: text }, 'stop')
          : variant === 5 ? chunkOf({ content: text }, null, { usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } })
          : variant === 6 ? chunkOf({ content: text }, null, { model: 'other' })
          : variant === 8 ? chunkOf({ content: text }, null, { obfuscation: randomText(next).replace(/[^a-z]/g, '') || 'x' })
          : chunkOf({ content: text, tool_calls: [{ index: 0, function: { arguments: text } }] }, null);
        const full = readChunk(JSON.parse(data));
        const fast = readFast(reader, data);
        if (fast) {
          taken++;
          expect(fast).toEqual(full);
        } else {
          reader.learn(data, full);
        }
      }
    }
    expect(taken).toBeGreaterThan(1500);
  });

  it('reads nothing until it has learned a frame, then reads text chunks of that frame exactly', () => {
    const reader = createTextChunkReader();
    const first = chunkOf({ content: 'a' }, null);
    expect(readFast(reader, first)).toBeUndefined();
    reader.learn(first, readChunk(JSON.parse(first)));
    const data = chunkOf({ content: 'say "hi"\\n 你好🙂' }, null);
    expect(readFast(reader, data)).toEqual(readChunk(JSON.parse(data)));
    expect(readChunk(JSON.parse(data))).toMatchObject({ content: 'say "hi"\\n 你好🙂' });
  });

  it('leaves finish, usage, tool-call, role, error and malformed chunks to the full parse', () => {
    const reader = createTextChunkReader();
    const first = chunkOf({ content: 'a' }, null);
    reader.learn(first, readChunk(JSON.parse(first)));
    expect(readFast(reader, chunkOf({ content: 'x' }, 'stop'))).toBeUndefined();
    expect(readFast(reader, chunkOf({ content: 'x' }, null, { usage: { prompt_tokens: 1, completion_tokens: 1 } }))).toBeUndefined();
    expect(readFast(reader, chunkOf({ content: 'x', tool_calls: [] }, null))).toBeUndefined();
    expect(readFast(reader, chunkOf({ role: 'assistant', content: '' }, null))).toBeUndefined();
    // An unescaped quote inside the "text" makes the chunk invalid JSON: not read as text.
    expect(readFast(reader, first.replace('"a"', '"a"b"'))).toBeUndefined();
    expect(readFast(reader, first.replace('"a"', '"a\nb"'))).toBeUndefined();
  });
});

describe('fast text-chunk reader on a short frame', () => {
  // A frame shorter than 80 bytes is compared by a JS loop rather than Buffer#compare: each byte counts.
  const short = (id: string, content: string, finish = 'null') => `{"id":"${id}","choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}},"finish_reason":${finish}}]}`;

  it('reads text chunks of the frame and leaves a chunk differing in any one byte of the frame to the full parse', () => {
    const reader = createTextChunkReader();
    const first = short('a', 'x');
    reader.learn(first, readChunk(JSON.parse(first)));
    const same = short('a', 'héllo "you"');
    expect(readFast(reader, same)).toEqual(readChunk(JSON.parse(same)));
    expect(readFast(reader, short('b', 'y'))).toBeUndefined();
    expect(readFast(reader, short('a', 'y', '"stop"'))).toBeUndefined();
    const frame = short('a', 'y');
    for (let index = 0; index < frame.length; index++) {
      // Every byte of the frame but the text's: changed, the chunk no longer fits the frame.
      if (index >= frame.indexOf('"y"') && index < frame.indexOf('"y"') + 3) continue;
      const changed = `${frame.slice(0, index)}${frame[index] === 'Z' ? 'Y' : 'Z'}${frame.slice(index + 1)}`;
      expect(readFast(reader, changed), changed).toBeUndefined();
    }
  });
});

describe('fast text-chunk reader and OpenAI obfuscation padding', () => {
  it('reads chunks whose obfuscation value differs every time', () => {
    const reader = createTextChunkReader();
    const chunk = (content: string, obfuscation: string) => chunkOf({ content }, null, { obfuscation });
    const first = chunk('a', 'Xy3');
    reader.learn(first, readChunk(JSON.parse(first)));
    for (const [content, padding] of [['你好', 'q'], ['"quoted"', 'LongerPadding123'], ['', '']] as const) {
      const data = chunk(content, padding);
      expect(readFast(reader, data)).toEqual(readChunk(JSON.parse(data)));
    }
    // A tail that is not just the padding field is left to the full parse.
    expect(readFast(reader, chunkOf({ content: 'x' }, null, { obfuscation: 'a', extra: 1 }))).toBeUndefined();
  });
});
