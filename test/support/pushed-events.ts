// Collects what an upstream call pushes (contract/provider.ts `PushedEvents`), and replays recorded
// body reads through the HTTP shell's body reader (`DecodedBody`) into a decoder, as a real
// response's reads would arrive: the decoders' tests go through the path the adapters use.
import type { EventBatch, EventSink, PushedEvents } from '../../src/contract/provider.js';
import type { StreamEvent } from '../../src/contract/stream-event.js';
import type { BodyDecoder } from '../../src/providers/shared/body-decoder.js';
import { DecodedBody } from '../../src/providers/shared/http-upstream.js';
import { signalCancellation } from '../../src/providers/shared/cancellation.js';

export interface Pushed {
  /** Every batch, in order. */
  batches: EventBatch[];
  /** The events of every batch, in order. */
  events: StreamEvent[];
  /** What the call failed with; undefined when it ended. */
  error?: unknown;
}

/** A sink that records; `settled` resolves at `end` or `fail`. */
export function recordingSink(): EventSink & { settled: Promise<Pushed> } {
  const pushed: Pushed = { batches: [], events: [] };
  let settle!: (value: Pushed) => void;
  const settled = new Promise<Pushed>((resolve) => (settle = resolve));
  return {
    settled,
    events(batch) {
      pushed.batches.push(batch);
      pushed.events.push(...batch);
    },
    end: () => settle(pushed),
    fail(error) {
      pushed.error = error;
      settle(pushed);
    },
  };
}

/** Starts a pushed call and resolves with what it pushed once it ended or failed. */
export function collectPushed(upstream: PushedEvents): Promise<Pushed> {
  const sink = recordingSink();
  upstream.pushTo(sink);
  return sink.settled;
}

/** Feeds `reads` (each one read of the body, delivered in its own turn) through DecodedBody into `decoder`. */
export function replayReads(decoder: BodyDecoder, reads: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, provider = 'test'): Promise<Pushed> {
  const sink = recordingSink();
  const body = new DecodedBody(decoder, sink, signalCancellation(new AbortController().signal), provider);
  void (async () => {
    try {
      for await (const read of reads) {
        // Its own turn, as a socket read is.
        await new Promise((resolve) => setImmediate(resolve));
        body.read(Buffer.from(read.buffer, read.byteOffset, read.byteLength));
      }
      body.end();
    } catch (error) {
      body.fail(error);
    }
  })();
  return sink.settled;
}
