// The generation: ordered log, fallback only before content, estimated usage, cancellation when
// the last subscriber leaves, and timeouts with their own codes.
import { describe, expect, it, vi } from 'vitest';
import { SluiceError } from '../errors/sluice-error.js';
import type { ProviderAdapter } from '../contract/provider.js';
import type { Candidate } from '../routing/model-router.js';
import type { AttemptSource } from '../routing/upstream-pools.js';
import { Generation } from './generation.js';
import type { StreamEvent } from '../contract/stream-event.js';
import { scriptedAdapter } from '../../test/support/scripted-adapter.js';

const timeouts = { connectMs: 1000, firstByteMs: 1000, idleMs: 1000, totalMs: 0 };
const adapter = scriptedAdapter;

const candidate = (provider: ProviderAdapter, overrides: Partial<Candidate['timeouts']> = {}): Candidate => ({ adapter: provider, model: 'm', timeouts: { ...timeouts, ...overrides } });

function start(candidates: Candidate[]): Generation {
  const generation = new Generation({ id: 'g1', request: { messages: [{ role: 'user', content: 'hello there' }], params: {} }, candidates, mode: 'stream', requestId: 'r1', now: Date.now });
  // A subscriber keeps it alive, as a client connection would.
  generation.subscribe(() => {});
  return generation;
}

const text = (value: string): StreamEvent => ({ type: 'text-delta', text: value });
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    });
  });

describe('Generation', () => {
  it('logs events in order, with provider usage and end last', async () => {
    const generation = start([
      candidate(
        adapter('a', async function* () {
          yield [{ type: 'start', upstreamModel: 'm' }];
          yield [text('he'), text('llo')];
          yield [{ type: 'usage', usage: { promptTokens: 1, completionTokens: 2, totalTokens: 3, estimated: false } }, { type: 'end', finishReason: 'stop' }];
        }),
      ),
    ]);
    const summary = await generation.done;
    expect(generation.events.map((event) => event.type)).toEqual(['start', 'text-delta', 'text-delta', 'usage', 'end']);
    expect(summary).toMatchObject({ outcome: 'completed', provider: 'a', usage: { totalTokens: 3, estimated: false } });
    expect(summary.timeToFirstTokenMs).toBeGreaterThanOrEqual(0);
  });

  it('tells its subscribers of the end before it settles done, and has the summary from the end on', async () => {
    const generation = new Generation({
      id: 'g1',
      request: { messages: [{ role: 'user', content: 'hi' }], params: {} },
      candidates: [candidate(adapter('a', async function* () {
        yield [text('hi'), { type: 'end', finishReason: 'stop' }];
      }))],
      mode: 'stream',
      requestId: 'r1',
      now: Date.now,
    });
    const order: string[] = [];
    generation.subscribe(() => {
      if (generation.finished) order.push(`subscriber saw the end; summary ${generation.summary?.outcome ?? 'missing'}`);
    });
    void generation.done.then(() => order.push('done'));
    const summary = await generation.done;
    // The accounting that awaits done (usage row, metrics, limits) runs after the client's last write.
    expect(order).toEqual(['subscriber saw the end; summary completed', 'done']);
    expect(generation.summary).toBe(summary);
  });

  it('estimates usage when the provider gives none, and marks it estimated', async () => {
    const generation = start([
      candidate(
        adapter('a', async function* () {
          yield [text('你好 world'), { type: 'end', finishReason: 'stop' }];
        }),
      ),
    ]);
    const summary = await generation.done;
    expect(generation.events.map((event) => event.type)).toEqual(['start', 'text-delta', 'usage', 'end']);
    expect(summary.usage).toMatchObject({ estimated: true, completionTokens: 4 });
    expect(summary.usage.promptTokens).toBeGreaterThan(0);
  });

  it('falls back to the next candidate on a retryable failure before any content', async () => {
    const first = adapter('first', async function* () {
      yield [{ type: 'start', upstreamModel: 'm' }];
      throw new SluiceError('upstream_rate_limited');
    });
    const second = adapter('second', async function* () {
      yield [text('ok'), { type: 'end', finishReason: 'stop' }];
    });
    const generation = start([candidate(first), candidate(second)]);
    const summary = await generation.done;
    expect(summary).toMatchObject({ outcome: 'completed', provider: 'second', fallbacks: [{ provider: 'first', code: 'upstream_rate_limited' }] });
    expect(second.calls).toHaveLength(1);
  });

  it('does not fall back after content, nor on a request error', async () => {
    const second = adapter('second', async function* () {
      yield [text('never'), { type: 'end', finishReason: 'stop' }];
    });
    const afterContent = start([
      candidate(
        adapter('first', async function* () {
          yield [text('partial')];
          throw new SluiceError('upstream_error');
        }),
      ),
      candidate(second),
    ]);
    expect(await afterContent.done).toMatchObject({ outcome: 'error', errorCode: 'upstream_error', provider: 'first' });
    expect(afterContent.events.at(-1)).toMatchObject({ type: 'error', error: { code: 'upstream_error' } });
    const badRequest = start([
      candidate(
        adapter('first', async function* () {
          yield* [];
          throw new SluiceError('upstream_bad_request');
        }),
      ),
      candidate(second),
    ]);
    expect(await badRequest.done).toMatchObject({ errorCode: 'upstream_bad_request' });
    expect(second.calls).toHaveLength(0);
  });

  it('cancels the upstream when the last subscriber leaves', async () => {
    const slow = adapter('slow', async function* (_request, context) {
      yield [text('a')];
      await sleep(10_000, context.signal);
      yield [{ type: 'end', finishReason: 'stop' }];
    });
    const generation = new Generation({ id: 'g', request: { messages: [], params: {} }, candidates: [candidate(slow)], mode: 'stream', requestId: 'r', now: Date.now });
    const leave = generation.subscribe(() => {});
    await new Promise((resolve) => setTimeout(resolve, 10));
    leave();
    const summary = await generation.done;
    expect(slow.calls[0]?.signal.aborted).toBe(true);
    expect(summary).toMatchObject({ outcome: 'cancelled', errorCode: 'cancelled', usage: { estimated: true } });
    expect(generation.events.at(-1)).toMatchObject({ type: 'error', error: { code: 'cancelled' } });
  });

  it('tries the candidates in order, records every fallback, and logs one start', async () => {
    const limited = adapter('limited', async function* () {
      yield [{ type: 'start', upstreamModel: 'm' }];
      throw new SluiceError('upstream_rate_limited');
    });
    const down = adapter('down', async function* () {
      yield* [];
      throw new SluiceError('upstream_unavailable');
    });
    const last = adapter('last', async function* () {
      yield [{ type: 'start', upstreamModel: 'm' }];
      yield [text('ok'), { type: 'end', finishReason: 'stop' }];
    });
    const generation = start([candidate(limited), candidate(down), candidate(last)]);
    const summary = await generation.done;
    expect(summary.fallbacks).toEqual([
      { provider: 'limited', deployment: 'limited/m', code: 'upstream_rate_limited' },
      { provider: 'down', deployment: 'down/m', code: 'upstream_unavailable' },
    ]);
    expect(summary.attempts).toBe(3);
    expect(summary.provider).toBe('last');
    expect(generation.events.map((event) => event.type)).toEqual(['start', 'text-delta', 'usage', 'end']);
  });

  it('falls back when a provider ends before its answer began, and not after a tool-call delta', async () => {
    const silent = adapter('silent', async function* () {
      yield [{ type: 'start', upstreamModel: 'm' }];
    });
    const backup = adapter('backup', async function* () {
      yield [text('ok'), { type: 'end', finishReason: 'stop' }];
    });
    expect(await start([candidate(silent), candidate(backup)]).done).toMatchObject({ outcome: 'completed', fallbacks: [{ provider: 'silent', code: 'upstream_stream_interrupted' }] });

    const toolThenFail = adapter('tool', async function* () {
      yield [{ type: 'tool-call-delta', index: 0, id: 'call_1', name: 'f' }];
      throw new SluiceError('upstream_rate_limited');
    });
    const unused = adapter('unused', async function* () {
      yield [text('never'), { type: 'end', finishReason: 'stop' }];
    });
    const generation = start([candidate(toolThenFail), candidate(unused)]);
    expect(await generation.done).toMatchObject({ outcome: 'error', errorCode: 'upstream_rate_limited', fallbacks: [] });
    expect(unused.calls).toHaveLength(0);
    expect(generation.committed).toBe(true);
  });

  it('reports the last candidate\'s failure when every candidate fails', async () => {
    const limited = (id: string) =>
      adapter(id, async function* () {
        yield* [];
        throw new SluiceError('upstream_rate_limited', { message: `${id} is busy` });
      });
    const generation = start([candidate(limited('a')), candidate(limited('b'))]);
    expect(await generation.done).toMatchObject({ outcome: 'error', errorCode: 'upstream_rate_limited', provider: 'b', fallbacks: [{ provider: 'a', deployment: 'a/m', code: 'upstream_rate_limited' }] });
    expect(generation.events.map((event) => event.type)).toEqual(['usage', 'error']);
    expect(generation.events.at(-1)).toEqual({ type: 'error', error: { code: 'upstream_rate_limited', message: 'b is busy', retryable: true } });
  });

  it('turns an error event from an adapter into the terminal error, after the content before it', async () => {
    const generation = start([
      candidate(
        adapter('a', async function* () {
          yield [text('partial'), { type: 'error', error: { code: 'upstream_protocol_error', message: 'bad chunk', retryable: true } }];
        }),
      ),
    ]);
    expect(await generation.done).toMatchObject({ outcome: 'error', errorCode: 'upstream_protocol_error' });
    expect(generation.events).toEqual([{ type: 'start', upstreamModel: expect.any(String) as unknown }, text('partial'), { type: 'usage', usage: expect.objectContaining({ estimated: true }) as unknown }, { type: 'error', error: { code: 'upstream_protocol_error', message: 'bad chunk', retryable: true } }]);
  });

  it('keeps end last: what an adapter yields after end is not logged', async () => {
    const generation = start([
      candidate(
        adapter('a', async function* () {
          yield [text('a'), { type: 'end', finishReason: 'stop' }, text('late')];
          yield [text('later')];
        }),
      ),
    ]);
    await generation.done;
    expect(generation.events.map((event) => event.type)).toEqual(['start', 'text-delta', 'usage', 'end']);
  });

  it('keeps the provider\'s first usage and does not add an estimate', async () => {
    const reported = { promptTokens: 7, completionTokens: 1, totalTokens: 8, estimated: false };
    const generation = start([
      candidate(
        adapter('a', async function* () {
          yield [text('a'), { type: 'usage', usage: reported }, { type: 'usage', usage: { ...reported, totalTokens: 99 } }, { type: 'end', finishReason: 'length' }];
        }),
      ),
    ]);
    expect((await generation.done).usage).toEqual(reported);
    expect(generation.events).toEqual([{ type: 'start', upstreamModel: expect.any(String) as unknown }, text('a'), { type: 'usage', usage: reported }, { type: 'end', finishReason: 'length' }]);
  });

  it('resolves done with a summary timed by the injected clock', async () => {
    let clock = 1000;
    const generation = new Generation({
      id: 'g-time',
      request: { messages: [{ role: 'user', content: 'hi' }], params: {} },
      candidates: [
        candidate(
          adapter('a', async function* () {
            clock = 1100;
            yield [{ type: 'start', upstreamModel: 'm' }];
            clock = 1250;
            yield [text('a')];
            clock = 1600;
            yield [{ type: 'end', finishReason: 'stop' }];
          }),
        ),
      ],
      mode: 'stream',
      requestId: 'r',
      now: () => clock,
    });
    generation.subscribe(() => {});
    expect(await generation.done).toEqual({
      id: 'g-time',
      provider: 'a',
      upstreamModel: 'm',
      outcome: 'completed',
      usage: { promptTokens: 5, completionTokens: 1, totalTokens: 6, estimated: true },
      timeToFirstTokenMs: 250,
      durationMs: 600,
      fallbacks: [],
      attempts: 1,
      deployment: 'a/m',
    });
    expect(generation.finished).toBe(true);
  });

  it('keeps running while any subscriber remains, and cancel() after the end changes nothing', async () => {
    const slow = adapter('slow', async function* (_request, context) {
      yield [text('a')];
      await sleep(30, context.signal);
      yield [{ type: 'end', finishReason: 'stop' }];
    });
    const generation = new Generation({ id: 'g', request: { messages: [], params: {} }, candidates: [candidate(slow)], mode: 'stream', requestId: 'r', now: Date.now });
    const leaveFirst = generation.subscribe(() => {});
    generation.subscribe(() => {});
    leaveFirst();
    leaveFirst();
    expect(await generation.done).toMatchObject({ outcome: 'completed' });
    expect(slow.calls[0]?.signal.aborted).toBe(false);
    const logged = [...generation.events];
    generation.cancel();
    expect(generation.events).toEqual(logged);
  });

  it('cancel() stops the upstream and ends the log with the reason', async () => {
    const slow = adapter('slow', async function* (_request, context) {
      await sleep(10_000, context.signal);
      yield [text('never')];
    });
    const generation = start([candidate(slow), candidate(adapter('unused', async function* () {}))]);
    generation.cancel(new SluiceError('shutting_down'));
    expect(await generation.done).toMatchObject({ outcome: 'cancelled', errorCode: 'shutting_down', fallbacks: [] });
    expect(slow.calls[0]?.signal.aborted).toBe(true);
    expect(generation.events.at(-1)).toMatchObject({ type: 'error', error: { code: 'shutting_down' } });
  });

  it("takes a source's same-turn first attempt: the upstream is called within the constructor, and next() only for a retry", async () => {
    const failing = adapter('first', async function* () {
      throw new SluiceError('upstream_unavailable');
    });
    const answering = adapter('second', async function* () {
      yield [text('ok'), { type: 'end', finishReason: 'stop' }];
    });
    const attempt = (provider: ProviderAdapter) => ({ ...candidate(provider), deployment: `${provider.id}/m`, succeeded() {}, failed: () => Promise.resolve(), ended() {} });
    const asked: string[] = [];
    const attempts: AttemptSource = {
      first: () => (asked.push('first'), attempt(failing)),
      next: () => (asked.push('next'), Promise.resolve(attempt(answering))),
    };
    const generation = new Generation({ id: 'g1', request: { messages: [{ role: 'user', content: 'hi' }], params: {} }, attempts, mode: 'stream', requestId: 'r1', now: Date.now });
    expect(failing.calls).toHaveLength(1);
    expect(asked).toEqual(['first']);
    generation.subscribe(() => {});
    expect(await generation.done).toMatchObject({ outcome: 'completed', attempts: 2, fallbacks: [{ provider: 'first', code: 'upstream_unavailable' }] });
    expect(asked).toEqual(['first', 'next']);
  });

  it('cancel() while the pool router waits in line ends the wait with the reason, and no upstream call is made', async () => {
    const unused = adapter('unused', async function* () {
      yield [text('never')];
    });
    let waitedWith: AbortSignal | undefined;
    const attempts: AttemptSource = {
      next(signal) {
        waitedWith = signal;
        return sleep(10_000, signal).then(() => ({ ...candidate(unused), deployment: 'unused/m', succeeded() {}, failed: () => Promise.resolve(), ended() {} }));
      },
    };
    const generation = new Generation({ id: 'g1', request: { messages: [{ role: 'user', content: 'hi' }], params: {} }, attempts, mode: 'stream', requestId: 'r1', now: Date.now });
    generation.subscribe(() => {});
    await Promise.resolve();
    generation.cancel(new SluiceError('shutting_down'));
    expect(await generation.done).toMatchObject({ outcome: 'cancelled', errorCode: 'shutting_down' });
    expect(waitedWith?.aborted).toBe(true);
    expect(unused.calls).toHaveLength(0);
  });

  it('a timeout aborts its attempt only: the next attempt gets a signal of its own, which cancel() then aborts', async () => {
    const stuck = adapter('stuck', async function* (_request, context) {
      await sleep(10_000, context.signal);
      yield [text('never')];
    });
    const slow = adapter('slow', async function* (_request, context) {
      yield [{ type: 'start', upstreamModel: 'm' }];
      await sleep(10_000, context.signal);
      yield [text('never')];
    });
    const generation = start([candidate(stuck, { firstByteMs: 30 }), candidate(slow)]);
    await vi.waitFor(() => expect(slow.calls).toHaveLength(1));
    expect(stuck.calls[0]?.signal.aborted).toBe(true);
    expect(slow.calls[0]?.signal.aborted).toBe(false);
    generation.cancel(new SluiceError('shutting_down'));
    expect(await generation.done).toMatchObject({ outcome: 'cancelled', errorCode: 'shutting_down', fallbacks: [{ provider: 'stuck', code: 'upstream_first_byte_timeout' }] });
    expect(slow.calls[0]?.signal.aborted).toBe(true);
  });

  it.each([
    ['first byte', { firstByteMs: 30 }, 'upstream_first_byte_timeout', false],
    ['idle', { idleMs: 30 }, 'upstream_idle_timeout', true],
    ['total', { totalMs: 30 }, 'upstream_total_timeout', true],
  ] as const)('times out on %s with its own code and aborts the upstream', async (_name, limits, code, sendsContent) => {
    const stuck = adapter('stuck', async function* (_request, context) {
      yield [{ type: 'start', upstreamModel: 'm' }];
      if (sendsContent) yield [text('a')];
      await sleep(10_000, context.signal);
    });
    const generation = start([candidate(stuck, limits)]);
    expect(await generation.done).toMatchObject({ outcome: 'error', errorCode: code });
    expect(stuck.calls[0]?.signal.aborted).toBe(true);
  });

  it('notifies subscribers once per turn of the event loop, not once per event', async () => {
    let notifications = 0;
    const generation = new Generation({
      id: 'g',
      request: { messages: [], params: {} },
      candidates: [
        candidate(
          adapter('a', async function* () {
            yield [text('1'), text('2'), text('3')];
            yield [text('4'), { type: 'end', finishReason: 'stop' }];
          }),
        ),
      ],
      mode: 'stream',
      requestId: 'r',
      now: Date.now,
    });
    generation.subscribe(() => notifications++);
    await generation.done;
    await new Promise((resolve) => setImmediate(resolve));
    expect(generation.events).toHaveLength(7);
    expect(notifications).toBe(1);
  });
});

describe('an observer of a generation', () => {
  it('is notified like a subscriber but neither keeps an abandoned generation alive nor cancels it by leaving', async () => {
    const slow = adapter('slow', async function* (_request, context) {
      yield [text('a'), text('b')];
      await sleep(40, context.signal);
      yield [text('c'), { type: 'end', finishReason: 'stop' }];
    });
    const kept = new Generation({ id: 'g-kept', request: { messages: [], params: {} }, candidates: [candidate(slow)], mode: 'stream', requestId: 'r', now: Date.now });
    kept.subscribe(() => undefined);
    let seen = 0;
    const notifiedLengths: number[] = [];
    const stopObserving = kept.observe(() => {
      notifiedLengths.push(kept.events.length - seen);
      seen = kept.events.length;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    // The observer leaving is not the last subscriber leaving: the generation runs to its end.
    stopObserving();
    expect(await kept.done).toMatchObject({ outcome: 'completed' });
    expect(slow.calls[0]?.signal.aborted).toBe(false);
    // One notification for the first turn's three events (start, a, b).
    expect(notifiedLengths).toEqual([3]);

    const abandoned = adapter('abandoned', async function* (_request, context) {
      yield [text('a')];
      await sleep(10_000, context.signal);
    });
    const generation = new Generation({ id: 'g-abandoned', request: { messages: [], params: {} }, candidates: [candidate(abandoned)], mode: 'stream', requestId: 'r', now: Date.now });
    let observed = 0;
    generation.observe(() => observed++);
    const leave = generation.subscribe(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 10));
    // The only subscriber leaves while an observer remains: cancelled at once, as if alone.
    leave();
    expect(await generation.done).toMatchObject({ outcome: 'cancelled' });
    expect(abandoned.calls[0]?.signal.aborted).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(observed).toBeGreaterThanOrEqual(2);
  });
});

describe('a resumable generation', () => {
  it('outlives its last subscriber for resumeGraceMs, keeps running when someone re-attaches, and is cancelled when nobody does', async () => {
    vi.useFakeTimers();
    try {
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const generation = new Generation({
        id: 'g-resume',
        request: { messages: [{ role: 'user', content: 'q' }], params: {} },
        candidates: [
          candidate(
            adapter('a', async function* () {
              yield [text('first')];
              await gate;
              yield [text('second'), { type: 'end', finishReason: 'stop' }];
            }),
            { idleMs: 60_000 },
          ),
        ],
        mode: 'stream',
        requestId: 'r',
        now: Date.now,
        resumeGraceMs: 1000,
      });
      const leave = generation.subscribe(() => undefined);
      leave();
      await vi.advanceTimersByTimeAsync(900);
      expect(generation.finished).toBe(false);
      // Re-attached in time: the grace timer is off, even long after.
      const second = generation.subscribe(() => undefined);
      await vi.advanceTimersByTimeAsync(5000);
      expect(generation.finished).toBe(false);
      second();
      await vi.advanceTimersByTimeAsync(1001);
      expect(generation.finished).toBe(true);
      release();
      const summary = await generation.done;
      expect(summary.outcome).toBe('cancelled');
      expect(generation.events.at(-1)).toMatchObject({ type: 'error', error: { code: 'cancelled', message: expect.stringContaining('resumeGraceMs') as unknown } });
    } finally {
      vi.useRealTimers();
    }
  });
});
