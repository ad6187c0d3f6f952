// The event log both a Generation and a follower on another node keep: seq numbering, the byte
// accounting slow-client checks rely on, when the answer counts as begun, and that nothing is
// logged after the terminal event.
import { describe, expect, it } from 'vitest';
import type { StreamEvent } from '../contract/stream-event.js';
import { approximateEncodedBytes, EventLog } from './event-log.js';

const start: StreamEvent = { type: 'start', upstreamModel: 'm' };
const usage: StreamEvent = { type: 'usage', usage: { promptTokens: 1, completionTokens: 2, totalTokens: 3, estimated: false } };
const end: StreamEvent = { type: 'end', finishReason: 'stop' };
const failure: StreamEvent = { type: 'error', error: { code: 'cancelled', message: 'Cancelled.', retryable: false } };
const text = (value: string): StreamEvent => ({ type: 'text-delta', text: value });

function logOf(events: readonly StreamEvent[]): EventLog {
  const log = new EventLog();
  for (const event of events) log.append(event);
  return log;
}

describe('approximateEncodedBytes', () => {
  it('counts the framing of every event plus the text it carries', () => {
    expect(approximateEncodedBytes(start)).toBe(200);
    expect(approximateEncodedBytes(text('hello'))).toBe(205);
    expect(approximateEncodedBytes({ type: 'tool-call-delta', index: 0, argumentsDelta: '{"a":1}' })).toBe(207);
    expect(approximateEncodedBytes({ type: 'tool-call-delta', index: 0, name: 'lookup' })).toBe(200);
    expect(approximateEncodedBytes(end)).toBe(200);
  });
});

describe('EventLog', () => {
  it('numbers events by seq in the order they were appended', () => {
    const events = [start, text('a'), text('b'), usage, end];
    const log = logOf(events);
    expect(log.events).toEqual(events);
    expect(log.length).toBe(5);
    expect(log.events[2]).toBe(events[2]);
  });

  it('gives the bytes from any cursor to the end, and 0 at the end', () => {
    const events = [start, text('abc'), text('de'), end];
    const log = logOf(events);
    for (let seq = 0; seq <= events.length; seq++) {
      const expected = events.slice(seq).reduce((sum, event) => sum + approximateEncodedBytes(event), 0);
      expect(log.bytesFrom(seq), `from seq ${seq.toString()}`).toBe(expected);
    }
    expect(log.bytesFrom(events.length)).toBe(0);
    expect(new EventLog().bytesFrom(0)).toBe(0);
  });

  it('keeps bytesFrom current as the log grows', () => {
    const log = logOf([start]);
    const before = log.bytesFrom(1);
    log.append(text('xyz'));
    expect(before).toBe(0);
    expect(log.bytesFrom(1)).toBe(203);
    expect(log.bytesFrom(0)).toBe(403);
  });

  it('commits at the first answer event, whatever its kind, and not on start or usage', () => {
    const answers: StreamEvent[] = [text('a'), { type: 'tool-call-delta', index: 0, name: 'f' }, { type: 'upstream-event', data: { step: 1 } }];
    for (const answer of answers) {
      const log = logOf([start, usage]);
      expect(log.committed, answer.type).toBe(false);
      log.append(answer);
      expect(log.committed, answer.type).toBe(true);
    }
    expect(logOf([start, failure]).committed).toBe(false);
  });

  it('is finished by end or error, and logs nothing after it', () => {
    for (const terminal of [end, failure]) {
      const log = logOf([start, text('a')]);
      expect(log.finished).toBe(false);
      expect(log.append(terminal)).toBe(true);
      expect(log.finished).toBe(true);
      const bytes = log.bytesFrom(0);
      expect(log.append(text('late'))).toBe(false);
      expect(log.append(end)).toBe(false);
      expect(log.events).toEqual([start, text('a'), terminal]);
      expect(log.bytesFrom(0)).toBe(bytes);
    }
  });
});
