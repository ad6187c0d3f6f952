// Every kind of stream event survives the trip through a Redis log entry, including a signed-http
// agent's own events (`upstream-event`), which a follower on another node once got as internal_error.
import { describe, expect, it } from 'vitest';
import type { StreamEvent } from '../../contract/stream-event.js';
import { parseEvent } from './wire.js';

const events: StreamEvent[] = [
  { type: 'start', upstreamModel: 'm' },
  { type: 'text-delta', text: '你好 👋' },
  { type: 'tool-call-delta', index: 0, id: 'call_1', name: 'lookup', argumentsDelta: '{"q":' },
  { type: 'upstream-event', event: 'step', data: { userId: 'alice', step: 2 } },
  { type: 'usage', usage: { promptTokens: 1, completionTokens: 2, totalTokens: 3, estimated: false } },
  { type: 'end', finishReason: 'stop' },
  { type: 'error', error: { code: 'upstream_error', message: 'boom', retryable: true } },
];

describe('a generation log entry in Redis', () => {
  it.each(events)('reads back a $type event unchanged', (event) => {
    expect(parseEvent(JSON.stringify(event))).toEqual(event);
  });

  it('refuses an entry that is not a stream event', () => {
    expect(() => parseEvent(JSON.stringify({ type: 'surprise' }))).toThrow(/not a stream event/);
    expect(() => parseEvent(JSON.stringify([1]))).toThrow(/not a stream event/);
  });
});
