// First-byte, idle and total timeouts: each fires at its own time with its own code, aborts the
// upstream, fails the attempt's sink at once, and leaves no timer behind; `start` is not an
// answer, so it does not stop the first-byte timer. The scripted upstreams are async generators,
// pulled into the TimedSink by startUpstream as the relay does.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SluiceError } from '../errors/sluice-error.js';
import type { EventBatch, PushedEvents, Timeouts, UpstreamEvents } from '../contract/provider.js';
import type { StreamEvent } from '../contract/stream-event.js';
import { recordingSink } from '../../test/support/pushed-events.js';
import { TimedSink } from './timeouts.js';
import { startUpstream } from './upstream-events.js';

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

/** An attempt's step controller that records every abort call, not only the first that counts. */
class RecordingController extends AbortController {
  readonly aborts: unknown[] = [];

  override abort(reason?: unknown): void {
    this.aborts.push(reason);
    super.abort(reason);
  }
}

interface Timed {
  sink: TimedSink;
  step: RecordingController;
  /** Batches the target received, with the fake time at which each arrived. */
  received: { atMs: number; batch: EventBatch }[];
  /** Errors the target was failed with: one at most. */
  failures: unknown[];
  /** How many times the target heard `end`: one at most. */
  ends: number;
  /** Settles with the failure, or undefined when the upstream ended. */
  outcome: Promise<SluiceError | undefined>;
  settled: () => boolean;
}

/**
 * A TimedSink in front of a recording sink, as the generation puts one in front of itself;
 * `onBatch` runs after each batch reached the target (the generation closes the sink there once its
 * answer is finished).
 */
function timedSink(timeouts: Timeouts, provider = 'p', onBatch?: (sink: TimedSink) => void): Timed {
  const target = recordingSink();
  const step = new RecordingController();
  const startedAt = Date.now();
  let done = false;
  const timed: Timed = {
    sink: undefined as unknown as TimedSink,
    step,
    received: [],
    failures: [],
    ends: 0,
    outcome: target.settled.then((pushed) => {
      done = true;
      if (pushed.error === undefined || pushed.error instanceof SluiceError) return pushed.error;
      throw new Error('The upstream failed with something other than a SluiceError.', { cause: pushed.error });
    }),
    settled: () => done,
  };
  timed.sink = new TimedSink(
    {
      events(batch) {
        timed.received.push({ atMs: Date.now() - startedAt, batch });
        target.events(batch);
        onBatch?.(timed.sink);
      },
      end() {
        timed.ends += 1;
        target.end();
      },
      fail(error) {
        timed.failures.push(error);
        target.fail(error);
      },
    },
    timeouts,
    step,
    provider,
  );
  return timed;
}

/** A script step: wait this many ms, then yield this batch. */
type Step = [waitMs: number, batch: readonly StreamEvent[]];

interface Run extends Timed {
  /** Whether the scripted upstream's cleanup (its `finally`) ran. */
  cleanedUp: () => boolean;
}

/** Runs a scripted upstream through a TimedSink; the upstream waits `tailMs` after its last step. */
function run(steps: readonly Step[], limits: Partial<Timeouts>, tailMs = 1_000_000): Run {
  const timeouts: Timeouts = { connectMs: 1000, firstByteMs: 1000, idleMs: 1000, totalMs: 0, ...limits };
  const timed = timedSink(timeouts);
  const signal = timed.step.signal;
  let cleanedUp = false;
  async function* upstream(): AsyncGenerator<EventBatch> {
    try {
      for (const [waitMs, batch] of steps) {
        await sleep(waitMs, signal);
        yield batch;
      }
      await sleep(tailMs, signal);
    } finally {
      cleanedUp = true;
    }
  }
  startUpstream(upstream(), timed.sink);
  return Object.assign(timed, { cleanedUp: () => cleanedUp });
}

const limits: Timeouts = { connectMs: 1, firstByteMs: 100, idleMs: 100, totalMs: 100 };

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('TimedSink', () => {
  it('first-byte: fires at firstByteMs with its own code and aborts the upstream; start does not count', async () => {
    const stream = run([[10, [start]]], { firstByteMs: 100, idleMs: 30 });
    await vi.advanceTimersByTimeAsync(99);
    // Had `start` counted as the first byte, the 30 ms idle timer would have fired by now.
    expect(stream.settled()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const error = await stream.outcome;
    expect(error?.code).toBe('upstream_first_byte_timeout');
    expect(error?.message).toBe('Provider "p" hit the first-byte timeout (100 ms).');
    expect(stream.step.aborts).toEqual([error]);
    expect(stream.step.signal.reason).toBe(error);
    expect(stream.received.map((entry) => entry.batch)).toEqual([[start]]);
    expect(stream.sink.closed).toBe(true);
    expect(stream.cleanedUp()).toBe(true);
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
    expect(stream.step.aborts).toEqual([error]);
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
    expect(stream.received).toHaveLength(50);
    expect(stream.ends).toBe(1);
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
    expect(stream.step.aborts).toEqual([error]);
    expect(stream.received).toHaveLength(14);
    // Nothing the upstream still had reaches the target after the timeout.
    await vi.advanceTimersByTimeAsync(100);
    expect(stream.received).toHaveLength(14);
    expect(stream.cleanedUp()).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('only the first timeout to fire counts, and abort is called once', async () => {
    // The first-byte and total timeouts are due at the same moment.
    const stream = run([], { firstByteMs: 100, totalMs: 100 });
    await vi.advanceTimersByTimeAsync(100);
    expect((await stream.outcome)?.code).toBe('upstream_first_byte_timeout');
    expect(stream.step.aborts).toHaveLength(1);
    // The upstream's own failure (the abort reason, rethrown by its sleep) is dropped.
    await vi.advanceTimersByTimeAsync(1000);
    expect(stream.failures).toHaveLength(1);
    expect(stream.ends).toBe(0);
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
    // The very batches, not copies.
    expect(stream.received.map((entry) => entry.batch)).toEqual(batches);
    stream.received.forEach((entry, index) => expect(entry.batch).toBe(batches[index]));
    expect(stream.step.aborts).toEqual([]);
    expect(stream.ends).toBe(1);
    expect(stream.sink.closed).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('idleMs 0 and totalMs 0 turn those timeouts off', async () => {
    const stream = run([[10, [text('a')]]], { firstByteMs: 100, idleMs: 0, totalMs: 0 }, 10_000);
    await vi.advanceTimersByTimeAsync(10_009);
    expect(stream.settled()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await stream.outcome).toBeUndefined();
    expect(stream.step.aborts).toEqual([]);
  });

  it('passes on an upstream failure that is not a timeout, and clears its timers', async () => {
    async function* failing(): AsyncGenerator<EventBatch> {
      yield [text('a')];
      throw new SluiceError('upstream_stream_interrupted');
    }
    const timed = timedSink(limits);
    startUpstream(failing(), timed.sink);
    const error = await timed.outcome;
    expect(error?.code).toBe('upstream_stream_interrupted');
    expect(timed.received.map((entry) => entry.batch)).toEqual([[text('a')]]);
    expect(timed.failures).toEqual([error]);
    expect(timed.step.aborts).toEqual([]);
    expect(timed.sink.closed).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('clears its timers when the consumer stops early', async () => {
    let cleanedUp = false;
    const upstream = (async function* (): AsyncGenerator<EventBatch> {
      try {
        yield [text('a')];
        yield [text('b')];
      } finally {
        cleanedUp = true;
      }
    })();
    // The consumer (the generation, once its answer is finished) closes the sink after the first batch.
    const timed = timedSink(limits, 'p', (sink) => sink.close());
    startUpstream(upstream, timed.sink);
    await vi.advanceTimersByTimeAsync(0);
    expect(timed.received.map((entry) => entry.batch)).toEqual([[text('a')]]);
    expect(timed.sink.closed).toBe(true);
    // The adapter's cleanup ran: its iterator was told to return when the sink closed.
    expect(cleanedUp).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    // Nobody hears an end, a failure or a later batch.
    await vi.advanceTimersByTimeAsync(1000);
    expect(timed.received).toHaveLength(1);
    expect(timed.settled()).toBe(false);
    expect(timed.failures).toEqual([]);
    expect(timed.ends).toBe(0);
    expect(timed.step.aborts).toEqual([]);
  });

  it('drops what a pushed upstream sends after a timeout, and what it sends after its end', async () => {
    let pushTo: TimedSink | undefined;
    const pushed: PushedEvents = {
      pushTo(sink) {
        pushTo = sink as TimedSink;
        sink.events([start]);
      },
    };
    const timed = timedSink({ connectMs: 1, firstByteMs: 50, idleMs: 50, totalMs: 0 });
    startUpstream(pushed, timed.sink);
    // A pushed upstream is handed the TimedSink itself.
    expect(pushTo).toBe(timed.sink);
    await vi.advanceTimersByTimeAsync(50);
    expect((await timed.outcome)?.code).toBe('upstream_first_byte_timeout');
    timed.sink.events([text('late')]);
    timed.sink.end();
    timed.sink.fail(new SluiceError('upstream_stream_interrupted'));
    expect(timed.received.map((entry) => entry.batch)).toEqual([[start]]);
    expect(timed.failures).toHaveLength(1);
    expect(timed.ends).toBe(0);

    const ended = timedSink(limits);
    startUpstream({ pushTo: (sink) => (sink.events([text('a')]), sink.end()) } satisfies UpstreamEvents, ended.sink);
    expect(await ended.outcome).toBeUndefined();
    ended.sink.events([text('b')]);
    ended.sink.fail(new SluiceError('upstream_stream_interrupted'));
    expect(ended.received.map((entry) => entry.batch)).toEqual([[text('a')]]);
    expect(ended.failures).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('TimedSink and an adapter that ignores its abort signal', () => {
  it('still ends the attempt when the timeout fires', async () => {
    let finallyRan = false;
    async function* deaf(): AsyncGenerator<EventBatch> {
      try {
        yield [{ type: 'text-delta', text: 'a' }];
        // Never settles and never looks at any signal.
        await new Promise(() => {});
      } finally {
        finallyRan = true;
      }
    }
    const timed = timedSink({ connectMs: 1000, firstByteMs: 1000, idleMs: 40, totalMs: 0 }, 'deaf');
    startUpstream(deaf(), timed.sink);
    await vi.advanceTimersByTimeAsync(50);
    expect(timed.settled()).toBe(true);
    const error = await timed.outcome;
    expect(error).toMatchObject({ code: 'upstream_idle_timeout' });
    expect(timed.step.aborts).toEqual([error]);
    expect((timed.step.aborts[0] as SluiceError).code).toBe('upstream_idle_timeout');
    // The generator is stuck in its read, so its cleanup cannot run; the attempt did not wait for it.
    expect(finallyRan).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  }, 5000);

  it('tells the stuck iterator to return at once, without waiting for its pending read', async () => {
    const calls: string[] = [];
    const stuck: AsyncIterable<EventBatch> = {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          calls.push('next');
          return calls.length === 1 ? Promise.resolve({ done: false, value: [text('a')] }) : new Promise<IteratorResult<EventBatch>>(() => {});
        },
        return: () => {
          calls.push('return');
          // Never settles either.
          return new Promise<IteratorResult<EventBatch>>(() => {});
        },
      }),
    };
    const timed = timedSink({ connectMs: 1000, firstByteMs: 1000, idleMs: 40, totalMs: 0 }, 'deaf');
    startUpstream(stuck, timed.sink);
    await vi.advanceTimersByTimeAsync(39);
    expect(calls).toEqual(['next', 'next']);
    await vi.advanceTimersByTimeAsync(1);
    expect(timed.settled()).toBe(true);
    expect((await timed.outcome)?.code).toBe('upstream_idle_timeout');
    expect(calls).toEqual(['next', 'next', 'return']);
  }, 5000);
});
