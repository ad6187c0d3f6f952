// Recorded ERNIE streams, replayed read by read (reads end inside characters), decode exactly.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SluiceError } from '../../errors/sluice-error.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { replayReads } from '../../../test/support/pushed-events.js';
import { reshape } from './request.js';
import { resultStreamDecoder } from './stream.js';

async function* reads(name: string): AsyncGenerator<Uint8Array> {
  for (const line of readFileSync(new URL(`./__fixtures__/qianfan-${name}.chunks.txt`, import.meta.url), 'utf8').split('\n').filter(Boolean)) {
    await Promise.resolve();
    yield Buffer.from(JSON.parse(line) as string, 'latin1');
  }
}

async function replay(name: string): Promise<{ events: StreamEvent[]; error?: SluiceError }> {
  const { events, error } = await replayReads(resultStreamDecoder({ maxEventBytes: 1 << 20, provider: 'ernie', secrets: [] }), reads(name));
  return error === undefined ? { events } : { events, error: error as SluiceError };
}

const textOf = (events: StreamEvent[]) => events.map((event) => (event.type === 'text-delta' ? event.text : '')).join('');

describe('recorded ERNIE streams', () => {
  it('text: whole characters, last usage, stop', async () => {
    const { events, error } = await replay('text');
    expect(error).toBeUndefined();
    expect(textOf(events)).toBe('文心一言，你好 🙂。');
    expect(events.slice(-2)).toEqual([{ type: 'usage', usage: { promptTokens: 7, completionTokens: 9, totalTokens: 16, estimated: false } }, { type: 'end', finishReason: 'stop' }]);
  });

  it('is_truncated gives finish reason length', async () => {
    expect((await replay('truncated-length')).events.at(-1)).toEqual({ type: 'end', finishReason: 'length' });
  });

  it('an error_code event mid-stream fails after the text before it', async () => {
    const { events, error } = await replay('error-mid-stream');
    expect(textOf(events)).toBe('部分');
    expect(error?.code).toBe('upstream_unavailable');
  });

  it('a stream without is_end is interrupted, not complete', async () => {
    expect((await replay('no-end')).error?.code).toBe('upstream_stream_interrupted');
  });

  it('reshape refuses a conversation that starts with the assistant', () => {
    expect(() => reshape([{ role: 'assistant', content: 'a' }, { role: 'user', content: 'q' }])).toThrow(/start and end with a user turn/);
  });
});
