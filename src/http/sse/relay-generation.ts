// Moves a generation's events to one SSE client: the follow loop (src/relay/follow-generation.ts)
// with an SSE response as its sink. What SSE adds: the head is held until the generation has
// committed, so a failure before the answer can still be an HTTP status; events of one read of
// the log leave in one write; the log is read only when the socket drains; and a client that
// leaves more than `maxBufferedBytes` unsent gets a last `client_too_slow` error event, and its
// socket is dropped soon after if it reads nothing at all.
import type { IncomingMessage } from 'node:http';
import { SluiceError } from '../../errors/sluice-error.js';
import type { GenerationView } from '../../relay/generation.js';
import type { EventEncoder } from '../../relay/encoders/openai-chunks.js';
import { followGeneration, type FollowSink, type HeldHead } from '../../relay/follow-generation.js';
import { errorPayload, type ErrorPayload, type StreamEvent } from '../../contract/stream-event.js';
import type { SseStream } from './sse-writer.js';
import { applyUpstreamHeaders } from '../respond.js';
import { onResponseClose } from '../on-response-close.js';
import { releaseRequestHeaders } from '../release-request-headers.js';

export interface RelayOptions {
  generation: GenerationView;
  sse: SseStream;
  encode: EventEncoder;
  /** The first sequence number to send (for resumes). */
  fromSeq?: number;
  maxBufferedBytes: number;
  /** Answers the request instead, when the generation failed before anything was sent. */
  onErrorBeforeOpen: (error: ErrorPayload) => void;
  /** Counts this client's stream while it runs (the active streams gauge). */
  streams: { inc(): void; dec(): void };
}

/** How long a client cut off as too slow may hold its socket before it is destroyed (ms). */
const tooSlowGraceMs = 1000;

/**
 * Starts relaying and returns: the stream lives on in the follow loop's listeners, counted in
 * `streams` until this client's part is over (the generation itself may go on for others). The
 * route that calls this returns too, so neither its frame nor the request handler's stays
 * suspended for as long as the stream is held (decision 0032; decision 0029 did the same for the
 * hub's stream). Nothing waited on the route: the request's log line is written on 'close'.
 */
export function relayGeneration(options: RelayOptions): void {
  // The route read every header it needs before the generation started; the stream may last
  // minutes, and its request's headers (the caller's key among them) need not.
  const request = options.sse.response.req as IncomingMessage | undefined;
  if (request !== undefined) releaseRequestHeaders(request);
  const relay = new SseRelay(options);
  const { streams } = options;
  streams.inc();
  let counted = true;
  const uncount = (): void => {
    if (!counted) return;
    counted = false;
    streams.dec();
  };
  try {
    followGeneration({ generation: options.generation, encode: options.encode, sink: relay, head: relay, maxBufferedBytes: options.maxBufferedBytes, onEnd: uncount, ...(options.fromSeq !== undefined ? { fromSeq: options.fromSeq } : {}) });
  } catch (error) {
    uncount();
    throw error;
  }
}

/**
 * The SSE response as the follow loop's sink and held head. A class rather than two object
 * literals: V8 keeps a literal with a getter in dictionary mode, and its methods would be closures
 * made per stream; a held stream keeps both for its whole life (docs/decisions/0032-what-a-held-stream-keeps.md).
 */
class SseRelay implements FollowSink, HeldHead {
  /** The writer stops at the socket's high-water mark, so what waits is still in the log. */
  readonly bufferedBytes = 0;
  readonly #options: RelayOptions;

  constructor(options: RelayOptions) {
    this.#options = options;
  }

  get sent(): boolean {
    return this.#options.sse.opened;
  }

  get blocked(): boolean {
    return this.#options.sse.blocked;
  }

  prepare(events: readonly StreamEvent[]): void {
    applyUpstreamHeaders(this.#options.sse.response, events);
  }

  fail(error: ErrorPayload): void {
    this.#options.sse.dispose();
    this.#options.onErrorBeforeOpen(error);
  }

  write(encoded: readonly string[]): void {
    this.#options.sse.write(encoded.join(''));
  }

  end(encoded: readonly string[]): void {
    this.#options.sse.end(encoded.join(''));
  }

  tooSlow(): void {
    const { generation, sse, encode, maxBufferedBytes } = this.#options;
    const error = new SluiceError('client_too_slow', {
      message: `The client left more than ${maxBufferedBytes.toString()} bytes unread (server.maxBufferedBytes); the stream was ended.`,
    });
    // The generation records why it stopped; the follow loop unsubscribes only after this.
    generation.cancel(error);
    // The cancel above makes the generation log this error next, at about this seq.
    sse.end(encode({ type: 'error', error: errorPayload(error) }, generation.events.length));
    // A client that reads nothing would hold the socket open forever.
    const response = sse.response;
    setTimeout(() => response.destroy(), tooSlowGraceMs).unref();
  }

  onDrain(listener: () => void): () => void {
    const response = this.#options.sse.response;
    response.on('drain', listener);
    return () => response.off('drain', listener);
  }

  onClose(listener: () => void): () => void {
    return onResponseClose(this.#options.sse.response, listener);
  }
}
