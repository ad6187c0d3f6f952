// What the append script receives: each event's JSON, one per line, exactly as JSON.stringify
// writes it (the text-delta shortcut included), whatever the text holds.
import { describe, expect, it } from 'vitest';
import type { StreamEvent } from '../../contract/stream-event.js';
import { encodeBatch } from './append-script.js';

describe('encodeBatch', () => {
  it('writes each event as JSON.stringify does, one per line, for texts with newlines, quotes, U+2028, lone surrogates and emoji', () => {
    const texts = ['plain', 'line\nbreak\r\n', 'quote " and \\ backslash', 'sep\u2028par\u2029', 'lone \ud800 surrogate', '😀 é 中', '', '\u0000\u001f'];
    const events: StreamEvent[] = [
      { type: 'start', upstreamModel: 'm' },
      ...texts.map((text): StreamEvent => ({ type: 'text-delta', text })),
      { type: 'tool-call-delta', index: 0, id: 'c1', name: 'f', argumentsDelta: '{"a":"\n"}' },
      { type: 'usage', usage: { promptTokens: 1, completionTokens: 2, totalTokens: 3, estimated: false } },
      { type: 'end', finishReason: 'stop' },
    ];
    const batch = encodeBatch(events);
    expect(batch.split('\n')).toEqual(events.map((event) => JSON.stringify(event)));
    expect(batch.split('\n').map((line) => JSON.parse(line) as unknown)).toEqual(events);
  });

  it('writes nothing for no events', () => {
    expect(encodeBatch([])).toBe('');
  });
});
