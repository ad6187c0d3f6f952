// Moves a generation's events to one SSE client: the follow loop (src/relay/follow-generation.ts)
// with an SSE response as its sink. What SSE adds: the head is held until the generation has
// committed, so a failure before the answer can still be an HTTP status; events of one read of
// the log leave in one write; the log is read only when the socket drains; and a client that
// leaves more than `maxBufferedBytes` unsent gets a last `client_too_slow` error event, and its
// socket is dropped soon after if it reads nothing at all.
import { SluiceError } from '../../errors/sluice-error.js';
import type { GenerationView } from '../../relay/generation.js';
import type { EventEncoder } from '../../relay/encoders/openai-chunks.js';
import { followGeneration, type FollowEnd, type FollowSink, type HeldHead } from '../../relay/follow-generation.js';
import { errorPayload, type ErrorPayload } from '../../contract/stream-event.js';
import type { SseStream } from './sse-writer.js';
import { applyUpstreamHeaders } from '../respond.js';
import { onResponseClose } from '../on-response-close.js';

export interface RelayOptions {
  generation: GenerationView;
  sse: SseStream;
  encode: EventEncoder;
  /** The first sequence number to send (for resumes). */
  fromSeq?: number;
  maxBufferedBytes: number;
  /** Answers the request instead, when the generation failed before anything was sent. */
  onErrorBeforeOpen: (error: ErrorPayload) => void;
}

export type RelayEnd = FollowEnd;

/** How long a client cut off as too slow may hold its socket before it is destroyed (ms). */
const tooSlowGraceMs = 1000;

/** Resolves when this client's part is over; the generation itself may go on for others. */
export function relayGeneration(options: RelayOptions): Promise<RelayEnd> {
  const { generation, sse, encode } = options;
  const response = sse.response;

  const head: HeldHead = {
    get sent() {
      return sse.opened;
    },
    prepare: (events) => applyUpstreamHeaders(response, events),
    fail(error) {
      sse.dispose();
      options.onErrorBeforeOpen(error);
    },
  };

  const sink: FollowSink = {
    get blocked() {
      return sse.blocked;
    },
    // The writer stops at the socket's high-water mark, so what waits is still in the log.
    bufferedBytes: 0,
    write: (encoded) => void sse.write(encoded.join('')),
    end: (encoded) => sse.end(encoded.join('')),
    tooSlow() {
      const error = new SluiceError('client_too_slow', {
        message: `The client left more than ${options.maxBufferedBytes.toString()} bytes unread (server.maxBufferedBytes); the stream was ended.`,
      });
      // The generation records why it stopped; the follow loop unsubscribes only after this.
      generation.cancel(error);
      // The cancel above makes the generation log this error next, at about this seq.
      sse.end(encode({ type: 'error', error: errorPayload(error) }, generation.events.length));
      // A client that reads nothing would hold the socket open forever.
      setTimeout(() => response.destroy(), tooSlowGraceMs).unref();
    },
    onDrain(listener) {
      response.on('drain', listener);
      return () => response.off('drain', listener);
    },
    onClose: (listener) => onResponseClose(response, listener),
  };

  return followGeneration({ generation, encode, sink, head, maxBufferedBytes: options.maxBufferedBytes, ...(options.fromSeq !== undefined ? { fromSeq: options.fromSeq } : {}) }).done;
}
