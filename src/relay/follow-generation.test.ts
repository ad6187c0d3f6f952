// The follow loop every transport shares, against a hand-driven generation: each client reads from
// its own cursor, one read of the log becomes one write, the terminal event ends the stream, a
// blocked sink is not written to and the backlog then waiting in the log cuts a slow client off, a
// sink's own buffer does the same, and a held head writes nothing before the answer exists.
import { describe, expect, it } from 'vitest';
import { SluiceError } from '../errors/sluice-error.js';
import type { ErrorPayload, StreamEvent } from '../contract/stream-event.js';
import type { GenerationListener, GenerationView } from './generation.js';
import { followGeneration, type FollowSink, type HeldHead } from './follow-generation.js';

/** Counted per event by bytesFrom(). */
const eventBytes = 100;

/** A generation driven by the test: append() logs events and notifies at once. */
class ScriptedGeneration implements GenerationView {
  readonly id = 'g1';
  readonly events: StreamEvent[] = [];
  committed = false;
  finished = false;
  cancelledWith: SluiceError | undefined;
  /** Whether a listener was still subscribed when cancel() was called. */
  subscribedAtCancel: boolean | undefined;
  readonly listeners = new Set<GenerationListener>();

  subscribe(listener: GenerationListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  cancel(reason?: SluiceError): void {
    this.cancelledWith = reason;
    this.subscribedAtCancel = this.listeners.size > 0;
  }

  bytesFrom(seq: number): number {
    return (this.events.length - seq) * eventBytes;
  }

  append(...events: StreamEvent[]): void {
    for (const event of events) {
      this.events.push(event);
      if (event.type === 'text-delta' || event.type === 'end') this.committed = true;
      if (event.type === 'end' || event.type === 'error') this.finished = true;
    }
    for (const listener of [...this.listeners]) listener();
  }
}

/** A sink that records its calls; `blocked` and `bufferedBytes` are set by the test. */
class RecordingSink implements FollowSink {
  blocked = false;
  bufferedBytes = 0;
  readonly writes: string[][] = [];
  ended: string[] | undefined;
  tooSlowCalls = 0;
  drain: (() => void) | undefined;
  close: (() => void) | undefined;

  write(encoded: readonly string[]): void {
    this.writes.push([...encoded]);
  }

  end(encoded: readonly string[]): void {
    this.ended = [...encoded];
  }

  tooSlow(): void {
    this.tooSlowCalls++;
  }

  onDrain(listener: () => void): () => void {
    this.drain = listener;
    return () => (this.drain = undefined);
  }

  onClose(listener: () => void): () => void {
    this.close = listener;
    return () => (this.close = undefined);
  }
}

const text = (value: string): StreamEvent => ({ type: 'text-delta', text: value });
const start: StreamEvent = { type: 'start', upstreamModel: 'm' };
const end: StreamEvent = { type: 'end', finishReason: 'stop' };
/** Encodes text deltas as `<seq>:<text>`; every other event but end writes nothing. */
const encode = (event: StreamEvent, seq: number): string => (event.type === 'text-delta' ? `${seq.toString()}:${event.text}` : event.type === 'end' ? 'end' : '');

describe('followGeneration', () => {
  it('sends what the log holds from the cursor on, one write per read, and ends at the terminal event', async () => {
    const generation = new ScriptedGeneration();
    generation.append(start, text('a'), text('b'));
    const sink = new RecordingSink();
    const follower = followGeneration({ generation, encode, sink, fromSeq: 2, maxBufferedBytes: 10_000 });
    expect(sink.writes).toEqual([['2:b']]);
    generation.append(text('c'), text('d'));
    expect(sink.writes).toEqual([['2:b'], ['3:c', '4:d']]);
    // Events that encode to nothing are left out; a read with nothing to send writes nothing.
    generation.append({ type: 'upstream-event', data: {} });
    expect(sink.writes).toHaveLength(2);
    generation.append(text('e'), end, text('after the end'));
    expect(sink.ended).toEqual(['6:e', 'end']);
    expect(await follower.done).toBe('complete');
    expect(generation.listeners.size).toBe(0);
    expect(sink.drain).toBeUndefined();
    expect(sink.close).toBeUndefined();
  });

  it('writes nothing while the sink is blocked and resumes from the cursor on drain', () => {
    const generation = new ScriptedGeneration();
    const sink = new RecordingSink();
    followGeneration({ generation, encode, sink, maxBufferedBytes: 10_000 });
    sink.blocked = true;
    generation.append(text('a'), text('b'));
    expect(sink.writes).toEqual([]);
    sink.blocked = false;
    sink.drain?.();
    expect(sink.writes).toEqual([['0:a', '1:b']]);
  });

  it('cuts off a blocked client once more than maxBufferedBytes wait in the log, while still subscribed', async () => {
    const generation = new ScriptedGeneration();
    const sink = new RecordingSink();
    const follower = followGeneration({ generation, encode, sink, maxBufferedBytes: 3 * eventBytes });
    sink.blocked = true;
    generation.append(text('a'), text('b'), text('c'));
    expect(sink.tooSlowCalls).toBe(0);
    generation.append(text('d'));
    expect(sink.tooSlowCalls).toBe(1);
    expect(await follower.done).toBe('client-too-slow');
    expect(generation.listeners.size).toBe(0);
    generation.append(text('e'));
    expect(sink.tooSlowCalls).toBe(1);
    expect(sink.writes).toEqual([]);
  });

  it('lets the sink cancel the generation before the loop unsubscribes', () => {
    const generation = new ScriptedGeneration();
    const sink = new RecordingSink();
    sink.tooSlow = () => generation.cancel(new SluiceError('client_too_slow', { message: 'slow' }));
    followGeneration({ generation, encode, sink, maxBufferedBytes: 0 });
    sink.blocked = true;
    generation.append(text('a'));
    expect(generation.cancelledWith?.code).toBe('client_too_slow');
    expect(generation.subscribedAtCancel).toBe(true);
  });

  it('cuts off a client whose sink holds more than maxBufferedBytes, though it never blocks', async () => {
    const generation = new ScriptedGeneration();
    const sink = new RecordingSink();
    const follower = followGeneration({ generation, encode, sink, maxBufferedBytes: 1000 });
    generation.append(text('a'));
    sink.bufferedBytes = 1001;
    generation.append(text('b'));
    expect(sink.writes).toEqual([['0:a']]);
    expect(sink.tooSlowCalls).toBe(1);
    expect(await follower.done).toBe('client-too-slow');
  });

  it('stops when the client goes away or on stop(), leaving the generation', async () => {
    const generation = new ScriptedGeneration();
    const closedSink = new RecordingSink();
    const closed = followGeneration({ generation, encode, sink: closedSink, maxBufferedBytes: 1000 });
    const stopped = followGeneration({ generation, encode, sink: new RecordingSink(), maxBufferedBytes: 1000 });
    expect(generation.listeners.size).toBe(2);
    closedSink.close?.();
    stopped.stop();
    stopped.stop();
    expect(await closed.done).toBe('client-closed');
    expect(await stopped.done).toBe('stopped');
    expect(generation.listeners.size).toBe(0);
  });
});

describe('followGeneration with a held head', () => {
  function heldHead(): HeldHead & { sent: boolean; prepared: number; failed: ErrorPayload[] } {
    return {
      sent: false,
      prepared: 0,
      failed: [],
      prepare() {
        this.prepared++;
      },
      fail(error) {
        this.failed.push(error);
      },
    };
  }

  it('writes nothing until the generation commits, then everything from the start', () => {
    const generation = new ScriptedGeneration();
    const sink = new RecordingSink();
    const head = heldHead();
    followGeneration({ generation, encode, sink, head, maxBufferedBytes: 1000 });
    generation.append(start);
    expect(head.prepared).toBeGreaterThan(0);
    expect(sink.writes).toEqual([]);
    generation.append(text('a'));
    expect(sink.writes).toEqual([['1:a']]);
  });

  it('hands a failure before the commit to the head instead of writing it', async () => {
    const generation = new ScriptedGeneration();
    const sink = new RecordingSink();
    const head = heldHead();
    const follower = followGeneration({ generation, encode, sink, head, maxBufferedBytes: 1000 });
    const error: ErrorPayload = { code: 'upstream_unavailable', message: 'down', retryable: true };
    generation.append(start, { type: 'error', error });
    expect(head.failed).toEqual([error]);
    expect(await follower.done).toBe('error-before-open');
    expect(sink.writes).toEqual([]);
    expect(sink.ended).toBeUndefined();
    expect(generation.listeners.size).toBe(0);
  });

  it('holds nothing once the head went out (a heartbeat), so a later failure is written in-band', () => {
    const generation = new ScriptedGeneration();
    const sink = new RecordingSink();
    const head = heldHead();
    followGeneration({ generation, encode: (event) => event.type, sink, head, maxBufferedBytes: 1000 });
    generation.append(start);
    head.sent = true;
    generation.append({ type: 'error', error: { code: 'upstream_unavailable', message: 'down', retryable: true } });
    expect(head.failed).toEqual([]);
    expect(sink.ended).toEqual(['start', 'error']);
  });
});
