// The timers many hub streams share (decision 0029): one interval beats every stream held, one
// timeout ends each at its own age, in order, after it has left; a stream that leaves gets neither;
// and with the last stream gone no timer is left, none of them ever keeping the process alive.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { waitFor } from '../../../test/support/wait.js';
import { heartbeatTickMs, StreamTimers } from './stream-timers.js';

/** A stream that records its beats and when it expired. */
function stream(name: string, expired: string[] = []) {
  return {
    name,
    beats: 0,
    beat() {
      this.beats++;
    },
    expire() {
      expired.push(name);
    },
  };
}

/** A stream that records when (performance.now()) it joined and each time it was beaten. */
function timedStream() {
  return {
    joinedAt: performance.now(),
    beats: [] as number[],
    beat() {
      this.beats.push(performance.now());
    },
    expire() {},
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('StreamTimers: heartbeats', () => {
  it('beats every stream it holds with one interval, which stops with the last stream and never keeps the process alive', async () => {
    const setSpy = vi.spyOn(globalThis, 'setInterval');
    const timers = new StreamTimers<ReturnType<typeof stream>>(20);
    const streams = [stream('a'), stream('b'), stream('c')];
    for (const one of streams) timers.add(one, 0);
    expect(setSpy).toHaveBeenCalledTimes(1);
    const interval = setSpy.mock.results[0]?.value as NodeJS.Timeout;
    expect(interval.hasRef()).toBe(false);
    await sleep(110);
    for (const one of streams) expect(one.beats).toBeGreaterThanOrEqual(3);

    const [first, second, third] = streams as [ReturnType<typeof stream>, ReturnType<typeof stream>, ReturnType<typeof stream>];
    timers.delete(first, 0);
    timers.delete(first, 0);
    const firstBeats = first.beats;
    await sleep(60);
    expect(first.beats).toBe(firstBeats);
    expect(second.beats).toBeGreaterThan(firstBeats);
    expect(timers.ticking).toBe(true);

    timers.delete(second, 0);
    timers.delete(third, 0);
    expect(timers.size).toBe(0);
    expect(timers.ticking).toBe(false);
    const thirdBeats = third.beats;
    await sleep(60);
    expect(third.beats).toBe(thirdBeats);
  });

  it('beats nothing that was not added: a stream joins once its head is written', async () => {
    const timers = new StreamTimers<ReturnType<typeof stream>>(10);
    const waiting = stream('waiting');
    await sleep(40);
    expect(waiting.beats).toBe(0);
    expect(timers.ticking).toBe(false);
    timers.add(waiting, 0);
    await sleep(40);
    expect(waiting.beats).toBeGreaterThan(0);
    timers.delete(waiting, 0);
  });

  it('spreads a long interval over ticks: each tick beats one slice, and every stream still gets one beat an interval, its first within one', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'performance'] });
    const intervalMs = 8 * heartbeatTickMs;
    const timers = new StreamTimers<ReturnType<typeof timedStream>>(intervalMs);
    expect(timers.slices).toBe(8);
    // 80 streams joining a millisecond apart, as in a reconnect storm, then one a while later.
    const streams: ReturnType<typeof timedStream>[] = [];
    for (let index = 0; index < 80; index++) {
      const one = timedStream();
      timers.add(one, 0);
      streams.push(one);
      vi.advanceTimersByTime(1);
    }
    vi.advanceTimersByTime(333);
    const late = timedStream();
    timers.add(late, 0);
    streams.push(late);

    vi.advanceTimersByTime(3 * intervalMs);

    // No tick beats more than its share: 80 / 8, and the late one.
    const perTick = new Map<number, number>();
    for (const one of streams) for (const at of one.beats) perTick.set(at, (perTick.get(at) ?? 0) + 1);
    expect(Math.max(...perTick.values())).toBeLessThanOrEqual(11);
    expect(perTick.size).toBeGreaterThanOrEqual(3 * timers.slices);
    for (const one of streams) {
      expect(one.beats.length).toBeGreaterThanOrEqual(3);
      expect(one.beats[0]! - one.joinedAt).toBeGreaterThan(0);
      expect(one.beats[0]! - one.joinedAt).toBeLessThanOrEqual(intervalMs);
      for (let index = 1; index < one.beats.length; index++) expect(one.beats[index]! - one.beats[index - 1]!).toBe(intervalMs);
      // Nothing owed at the end: the last beat is less than an interval ago.
      expect(performance.now() - one.beats.at(-1)!).toBeLessThan(intervalMs);
    }
    for (const one of streams) timers.delete(one, 0);
    expect(timers.ticking).toBe(false);
  });

  it('beats every stream on each tick when the interval is shorter than two ticks', () => {
    expect(new StreamTimers(2 * heartbeatTickMs - 1).slices).toBe(1);
    expect(new StreamTimers(15_000).slices).toBe(60);
    expect(new StreamTimers(3_600_000).slices).toBe(60);
  });

  it('with heartbeats off, sets no interval', () => {
    const setSpy = vi.spyOn(globalThis, 'setInterval');
    const timers = new StreamTimers<ReturnType<typeof stream>>(0);
    const one = stream('one');
    timers.add(one, 0);
    expect(setSpy).not.toHaveBeenCalled();
    expect(timers.ticking).toBe(false);
    timers.delete(one, 0);
  });
});

describe('StreamTimers: maximum ages', () => {
  it('ends each stream at its own age, in the order they are due across ages, each after it has left', async () => {
    const expired: string[] = [];
    const timers = new StreamTimers<ReturnType<typeof stream>>(0);
    const sizesAtExpiry: number[] = [];
    const make = (name: string) => {
      const one = stream(name, expired);
      one.expire = () => {
        sizesAtExpiry.push(timers.size);
        expired.push(name);
      };
      return one;
    };
    const startedAt = performance.now();
    timers.add(make('late'), 400);
    timers.add(make('early'), 50);
    timers.add(make('middle'), 250);
    timers.add(make('early too'), 50);
    expect(timers.size).toBe(4);
    await sleep(150);
    expect(expired).toEqual(['early', 'early too']);
    await waitFor(() => expired.length === 4, 'every stream to expire', 5000);
    expect(expired).toEqual(['early', 'early too', 'middle', 'late']);
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(399);
    // Each had left the timers when told: at most 3, 2, 1 and 0 still held. The two 50 ms streams
    // leave in one sweep ([2, 2, 1, 0]) unless the timer fires between their two due times, a few
    // µs apart, and the second goes in a sweep of its own a millisecond later ([3, 2, 1, 0]).
    expect(sizesAtExpiry).toHaveLength(4);
    sizesAtExpiry.forEach((size, index) => expect(size).toBeLessThanOrEqual(3 - index));
    expect(sizesAtExpiry.slice(1)).toEqual([2, 1, 0]);
    expect(timers.ticking).toBe(false);
  });

  it('never ends a stream that left, and sets no timer that keeps the process alive', async () => {
    const setSpy = vi.spyOn(globalThis, 'setTimeout');
    const expired: string[] = [];
    const timers = new StreamTimers<ReturnType<typeof stream>>(0);
    const leaving = stream('leaving', expired);
    const staying = stream('staying', expired);
    timers.add(leaving, 20);
    timers.add(staying, 40);
    for (const result of setSpy.mock.results) expect((result.value as NodeJS.Timeout).hasRef()).toBe(false);
    timers.delete(leaving, 20);
    await sleep(80);
    expect(expired).toEqual(['staying']);
    expect(timers.ticking).toBe(false);
  });

  it('holds nothing and sets no timer after many streams came and went', () => {
    const timers = new StreamTimers<ReturnType<typeof stream>>(15_000);
    const streams = Array.from({ length: 2000 }, (_, index) => ({ one: stream(`s${index.toString()}`), ageMs: 3_240_000 + (index % 360) * 1000 }));
    for (const { one, ageMs } of streams) timers.add(one, ageMs);
    expect(timers.size).toBe(2000);
    // Closed in an order of their own, not the order they came in.
    for (const { one, ageMs } of streams.reverse()) timers.delete(one, ageMs);
    expect(timers.size).toBe(0);
    expect(timers.ticking).toBe(false);
  });
});
