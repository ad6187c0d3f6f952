// The compact generation log (format 2): a batch of events in one list entry reads back as exactly
// those events, whatever their texts hold, and an entry that is not a batch is refused, not guessed.
import { describe, expect, it } from 'vitest';
import type { StreamEvent } from '../../contract/stream-event.js';
import { decodeEntry, encodeEntry, formatOfMeta } from './log-format.js';

const texts = ['plain', 'line\nbreak\r\n', 'quote " and \\ backslash', 'sep\u2028par\u2029', 'lone \ud800 surrogate', '😀 é 中', '', '\u0000\u001f', '"quoted"', '{"type":"end"}', '12'];
const events: StreamEvent[] = [
  { type: 'start', upstreamModel: 'm' },
  ...texts.map((text): StreamEvent => ({ type: 'text-delta', text })),
  { type: 'tool-call-delta', index: 0, id: 'c1', name: 'f', argumentsDelta: '{"a":"\n"}' },
  { type: 'upstream-event', event: 'step', data: { userId: 'alice', step: 2 } },
  { type: 'usage', usage: { promptTokens: 1, completionTokens: 2, totalTokens: 3, estimated: false } },
  { type: 'end', finishReason: 'stop' },
  { type: 'error', error: { code: 'upstream_error', message: 'boom\nagain', retryable: true } },
];

describe('a compact generation log entry', () => {
  it('reads back every kind of event, and texts with newlines, quotes, U+2028, lone surrogates, emoji and JSON, unchanged', () => {
    const entry = encodeEntry(42, events);
    expect(decodeEntry(entry)).toEqual({ firstSeq: 42, events });
  });

  it('writes a text delta as its text\'s JSON string and any other event as its JSON, one per line after the first seq', () => {
    const entry = encodeEntry(0, [{ type: 'start', upstreamModel: 'm' }, { type: 'text-delta', text: 'a\nb' }]);
    expect(entry).toBe('0\n{"type":"start","upstreamModel":"m"}\n"a\\nb"');
  });

  it('refuses an entry without its first seq, or holding something that is not a stream event', () => {
    expect(() => decodeEntry('{"type":"start","upstreamModel":"m"}')).toThrow(/not a batch of stream events/);
    expect(() => decodeEntry(7)).toThrow(/not a batch of stream events/);
    expect(() => decodeEntry('0\n{"type":"surprise"}')).toThrow(/not a stream event/);
    expect(() => decodeEntry('0\n[1]')).toThrow(/not a stream event/);
    expect(() => decodeEntry('0\n"unterminated')).toThrow(SyntaxError);
  });

  it('is format 2 only when the meta hash says so', () => {
    expect(formatOfMeta({ info: '{}', node: 'a', log: '2' })).toBe(2);
    expect(formatOfMeta({ info: '{}', node: 'a' })).toBe(1);
  });
});
