// First-byte, idle and total timeouts: each fires at its own time with its own code, aborts the
// upstream, and leaves no timer behind; `start` is not an answer, so it does not stop the
// first-byte timer.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SluiceError } from '../errors/sluice-error.js';
import type { Timeouts } from '../contract/provider.js';
import type { StreamEvent } from '../contract/stream-event.js';
import { withTimeouts } from './timeouts.js';

const start: StreamEvent = { type: 'start', upstreamModel: 'm' };
const text = (value: string): StreamEvent => ({ type: 'text-delta', text: value });

/** Resolves after `ms` (fake time), or rejects with the signal's reason, as an adapter's I/O does. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A script step: wait this many ms, then yield this batch. */
type Step = [waitMs: number, batch: readonly StreamEvent[]];

interface Run {
  /** Batches the consumer received, with the fake time at which each arrived. */
  received: { atMs: number; batch: readonly StreamEvent[] }[];
  aborts: SluiceError[];
  /** Settles with the thrown error, or undefined when the stream ended normally. */
  outcome: Promise<SluiceError | undefined>;
  settled: () => boolean;
}

/** Runs a scripted upstream through withTimeouts; the upstream waits `tailMs` after its last step. */
function run(steps: readonly Step[], limits: Partial<Timeouts>, tailMs = 1_000_000): Run {
  const timeouts: Timeouts = { connectMs: 1000, firstByteMs: 1000, idleMs: 1000, totalMs: 0, ...limits };
  const controller = new AbortController();
  const startedAt = Date.now();
  async function* upstream(): AsyncGenerator<readonly StreamEvent[]> {
    for (const [waitMs, batch] of steps) {
      await sleep(waitMs, controller.signal);
      yield batch;
    }
    await sleep(tailMs, controller.signal);
  }
  const result: Run = { received: [], aborts: [], outcome: Promise.resolve(undefined), settled: () => done };
  let done = false;
  const abort = (reason: SluiceError) => {
    result.aborts.push(reason);
    controller.abort(reason);
  };
  result.outcome = (async () => {
    try {
      for await (const batch of withTimeouts(upstream(), timeouts, abort, 'p')) result.received.push({ atMs: Date.now() - startedAt, batch });
      return undefined;
    } catch (error) {
      if (error instanceof SluiceError) return error;
      throw error;
    } finally {
      done = true;
    }
  })();
  return result;
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('withTimeouts', () => {
  it('first-byte: fires at firstByteMs with its own code and aborts the upstream; start does not count', async () => {
    const stream = run([[10, [start]]], { firstByteMs: 100, idleMs: 30 });
    await vi.advanceTimersByTimeAsync(99);
    // Had `start` counted as the first byte, the 30 ms idle timer would have fired by now.
    expect(stream.settled()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const error = await stream.outcome;
    expect(error?.code).toBe('upstream_first_byte_timeout');
    expect(error?.message).toBe('Provider "p" hit the first-byte timeout (100 ms).');
    expect(stream.aborts).toEqual([error]);
    expect(stream.received.map((entry) => entry.batch)).toEqual([[start]]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('idle: runs from the last content event, not from the first', async () => {
    const stream = run(
      [
        [50, [start, text('a')]],
        [80, [text('b')]],
        [80, [text('c')]],
      ],
      { firstByteMs: 100, idleMs: 100 },
    );
    // Content at 50, 130 and 210: no gap reaches 100 ms, though 210 ms have passed since the first.
    await vi.advanceTimersByTimeAsync(309);
    expect(stream.settled()).toBe(false);
    expect(stream.received.map((entry) => entry.atMs)).toEqual([50, 130, 210]);
    await vi.advanceTimersByTimeAsync(1);
    const error = await stream.outcome;
    expect(error?.code).toBe('upstream_idle_timeout');
    expect(stream.aborts).toEqual([error]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('holds one timer for all three timeouts, and arms no new one per batch', async () => {
    const steps: Step[] = Array.from({ length: 50 }, (_, index) => [2, [text(index.toString())]]);
    const stream = run(steps, { firstByteMs: 100, idleMs: 50, totalMs: 1000 }, 0);
    const counts: number[] = [];
    for (let step = 0; step < 50; step++) {
      await vi.advanceTimersByTimeAsync(2);
      // The scripted upstream holds one sleep timer of its own.
      counts.push(vi.getTimerCount() - 1);
    }
    expect(new Set(counts.slice(0, -1))).toEqual(new Set([1]));
    await vi.advanceTimersByTimeAsync(10);
    expect(await stream.outcome).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('idle: a start-only batch neither stops the first-byte timer nor starts the idle one', async () => {
    const stream = run([[10, [start]]], { firstByteMs: 200, idleMs: 50 });
    await vi.advanceTimersByTimeAsync(199);
    expect(stream.settled()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect((await stream.outcome)?.code).toBe('upstream_first_byte_timeout');
  });

  it('total: fires at totalMs even while content keeps arriving', async () => {
    const steps: Step[] = Array.from({ length: 100 }, (_, index) => [20, [text(index.toString())]]);
    const stream = run(steps, { firstByteMs: 100, idleMs: 100, totalMs: 300 });
    await vi.advanceTimersByTimeAsync(299);
    expect(stream.settled()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const error = await stream.outcome;
    expect(error?.code).toBe('upstream_total_timeout');
    expect(error?.message).toBe('Provider "p" hit the total timeout (300 ms).');
    expect(stream.aborts).toEqual([error]);
    expect(stream.received).toHaveLength(14);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('only the first timeout to fire counts, and abort is called once', async () => {
    // The first-byte and total timeouts are due at the same moment.
    const stream = run([], { firstByteMs: 100, totalMs: 100 });
    await vi.advanceTimersByTimeAsync(100);
    expect((await stream.outcome)?.code).toBe('upstream_first_byte_timeout');
    expect(stream.aborts).toHaveLength(1);
  });

  it('passes batches through unchanged and leaves no timer behind when the stream ends in time', async () => {
    const batches: StreamEvent[][] = [[start], [text('a'), text('b')], [{ type: 'end', finishReason: 'stop' }]];
    const stream = run(
      batches.map((batch) => [10, batch]),
      { firstByteMs: 100, idleMs: 100, totalMs: 1000 },
      0,
    );
    await vi.advanceTimersByTimeAsync(50);
    expect(await stream.outcome).toBeUndefined();
    expect(stream.received.map((entry) => entry.batch)).toEqual(batches);
    expect(stream.aborts).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('idleMs 0 and totalMs 0 turn those timeouts off', async () => {
    const stream = run([[10, [text('a')]]], { firstByteMs: 100, idleMs: 0, totalMs: 0 }, 10_000);
    await vi.advanceTimersByTimeAsync(10_009);
    expect(stream.settled()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await stream.outcome).toBeUndefined();
    expect(stream.aborts).toEqual([]);
  });

  it('passes on an upstream failure that is not a timeout, and clears its timers', async () => {
    async function* failing(): AsyncGenerator<readonly StreamEvent[]> {
      yield [text('a')];
      throw new SluiceError('upstream_stream_interrupted');
    }
    const aborts: SluiceError[] = [];
    const received: (readonly StreamEvent[])[] = [];
    const consume = async () => {
      for await (const batch of withTimeouts(failing(), { connectMs: 1, firstByteMs: 100, idleMs: 100, totalMs: 100 }, (reason) => aborts.push(reason), 'p')) received.push(batch);
    };
    await expect(consume()).rejects.toMatchObject({ code: 'upstream_stream_interrupted' });
    expect(received).toEqual([[text('a')]]);
    expect(aborts).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('clears its timers when the consumer stops early', async () => {
    const stream = withTimeouts(
      (async function* () {
        yield [text('a')];
        yield [text('b')];
      })(),
      { connectMs: 1, firstByteMs: 100, idleMs: 100, totalMs: 100 },
      () => {},
      'p',
    );
    for await (const batch of stream) {
      expect(batch).toEqual([text('a')]);
      break;
    }
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('withTimeouts and an adapter that ignores its abort signal', () => {
  it('still ends the attempt when the timeout fires', async () => {
    async function* deaf(): AsyncGenerator<readonly StreamEvent[]> {
      yield [{ type: 'text-delta', text: 'a' }];
      // Never settles and never looks at any signal.
      await new Promise(() => {});
    }
    let aborted: SluiceError | undefined;
    const consume = (async () => {
      for await (const batch of withTimeouts(deaf(), { connectMs: 1000, firstByteMs: 1000, idleMs: 40, totalMs: 0 }, (reason) => (aborted = reason), 'deaf')) void batch;
    })();
    const outcome = consume.then(
      () => undefined,
      (error: unknown) => error,
    );
    await vi.advanceTimersByTimeAsync(50);
    expect(await outcome).toMatchObject({ code: 'upstream_idle_timeout' });
    expect(aborted?.code).toBe('upstream_idle_timeout');
  }, 5000);
});
