// Recorded Spark frames (one WebSocket message per line) decode into the right events and errors.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SluiceError } from '../../errors/sluice-error.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { decodeFrame } from './stream.js';

function replay(name: string): { events: StreamEvent[]; last: boolean; error?: SluiceError } {
  const events: StreamEvent[] = [];
  let last = false;
  try {
    for (const line of readFileSync(new URL(`./__fixtures__/spark-${name}.frames.txt`, import.meta.url), 'utf8').split('\n').filter(Boolean)) {
      const decoded = decodeFrame(line, 'spark');
      events.push(...decoded.events);
      last = decoded.last;
    }
    return { events, last };
  } catch (error) {
    return { events, last, error: error as SluiceError };
  }
}

describe('recorded Spark frames', () => {
  it('text: content pieces, usage and end on the status 2 frame', () => {
    const { events, last } = replay('text');
    expect(last).toBe(true);
    expect(events.map((event) => (event.type === 'text-delta' ? event.text : '')).join('')).toBe('你好，我是星火 🙂。');
    expect(events.slice(-2)).toEqual([{ type: 'usage', usage: { promptTokens: 5, completionTokens: 6, totalTokens: 11, estimated: false } }, { type: 'end', finishReason: 'stop' }]);
  });

  it('content review (10013) is upstream_content_filtered with the sid', () => {
    const { error } = replay('content-review');
    expect(error?.code).toBe('upstream_content_filtered');
    expect(error?.message).toContain('sid cht000b@dx1');
  });

  it('concurrency over the limit (11203) after some text is upstream_rate_limited', () => {
    const { events, error } = replay('overload');
    expect(events).toEqual([{ type: 'text-delta', text: '部分' }]);
    expect(error?.code).toBe('upstream_rate_limited');
  });
});
