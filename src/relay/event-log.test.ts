// The event log both a Generation and a follower on another node keep: seq numbering, the byte
// accounting slow-client checks rely on, when the answer counts as begun, and that nothing is
// logged after the terminal event; and a kept log packed after it finished reads back the same.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { StreamEvent } from '../contract/stream-event.js';
import { approximateEncodedBytes, EventLog, packDelayMs } from './event-log.js';

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

describe('EventLog, packed once finished (packWhenFinished)', () => {
  afterEach(() => {
    // Packs what a test left queued, so the queue's (fake) interval stops with it.
    vi.advanceTimersByTime(packDelayMs * 2);
    vi.useRealTimers();
  });
  const fakeTime = (): void => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'performance'] });
  };
  const toolCall: StreamEvent = { type: 'tool-call-delta', index: 0, id: 'call_1', name: 'lookup', argumentsDelta: '{"q":"é"}' };
  // Texts a packing could get wrong: empty, multi-byte, a surrogate pair split over two deltas,
  // newlines, and events between the texts.
  const events: StreamEvent[] = [start, text(''), text('Grüße, '), toolCall, text('世界 '), text('\ud83d'), text('\ude00\n'), usage, text('last'), end];

  it('packs a second after the terminal event and reads back every event and byte count, then packs again', () => {
    fakeTime();
    const log = new EventLog();
    log.packWhenFinished();
    for (const event of events.slice(0, -1)) log.append(event);
    const bytes = Array.from({ length: events.length + 1 }, (_, seq) => events.slice(seq).reduce((sum, event) => sum + approximateEncodedBytes(event), 0));
    vi.advanceTimersByTime(packDelayMs * 3);
    expect(log.packed).toBe(false);
    log.append(end);
    vi.advanceTimersByTime(packDelayMs - 300);
    expect(log.packed).toBe(false);
    vi.advanceTimersByTime(600);
    expect(log.packed).toBe(true);
    expect([log.length, log.finished, log.committed]).toEqual([events.length, true, true]);
    expect(log.packed).toBe(true);
    expect(log.events).toEqual(events);
    expect(log.packed).toBe(false);
    // The events other than text deltas are the objects that were logged.
    expect(log.events[3]).toBe(toolCall);
    expect(log.events.at(-1)).toBe(end);
    vi.advanceTimersByTime(packDelayMs + 300);
    expect(log.packed).toBe(true);
    for (let seq = 0; seq <= events.length; seq++) expect(log.bytesFrom(seq), `from seq ${seq.toString()}`).toBe(bytes[seq]);
    expect(log.append(text('late'))).toBe(false);
    expect(log.events).toEqual(events);
  });

  it('packs only logs asked to, and only finished ones', () => {
    fakeTime();
    const kept = new EventLog();
    const unkept = new EventLog();
    const running = new EventLog();
    kept.packWhenFinished();
    running.packWhenFinished();
    for (const event of events) {
      kept.append(event);
      unkept.append(event);
    }
    for (const event of events.slice(0, -1)) running.append(event);
    vi.advanceTimersByTime(packDelayMs * 2);
    expect([kept.packed, unkept.packed, running.packed]).toEqual([true, false, false]);
    expect(running.append(text('more'))).toBe(true);
    expect(unkept.events[2]).toBe(events[2]);
  });

  it('packs a log asked to after it finished', () => {
    fakeTime();
    const log = logOf(events);
    log.packWhenFinished();
    vi.advanceTimersByTime(packDelayMs + 300);
    expect(log.packed).toBe(true);
    expect(log.events).toEqual(events);
  });

  it('reads a 200-token answer back whole', () => {
    fakeTime();
    const tokens = Array.from({ length: 200 }, (_, index) => text(`tok${index.toString()} `));
    const log = logOf([start, ...tokens, usage, end]);
    log.packWhenFinished();
    vi.advanceTimersByTime(packDelayMs + 300);
    expect(log.packed).toBe(true);
    expect(log.events.map((event) => (event.type === 'text-delta' ? event.text : '')).join('')).toBe(tokens.map((token) => (token.type === 'text-delta' ? token.text : '')).join(''));
  });
});
