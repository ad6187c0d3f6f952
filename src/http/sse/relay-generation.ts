// Moves a generation's events to one SSE client: from a cursor in the log, at the client's pace.
// A client that stops reading never makes the process buffer without bound: the log is read only
// when the socket drains, and once more than `maxBufferedBytes` of it wait unsent, the stream ends
// with `client_too_slow`.
import { SluiceError } from '../../errors/sluice-error.js';
import type { GenerationView } from '../../relay/generation.js';
import type { EventEncoder } from '../../relay/encoders/openai-chunks.js';
import { errorPayload, type ErrorPayload } from '../../contract/stream-event.js';
import type { SseStream } from './sse-writer.js';
import { applyUpstreamHeaders } from '../respond.js';

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

export type RelayEnd = 'complete' | 'client-closed' | 'client-too-slow' | 'error-before-open';

/** Resolves when this client's part is over; the generation itself may go on for others. */
export function relayGeneration(options: RelayOptions): Promise<RelayEnd> {
  const { generation, sse, encode } = options;
  const response = sse.response;
  let cursor = options.fromSeq ?? 0;
  let ended = false;

  return new Promise<RelayEnd>((resolve) => {
    const finish = (how: RelayEnd) => {
      if (ended) return;
      ended = true;
      response.off('drain', pump);
      response.off('close', onClose);
      unsubscribe();
      resolve(how);
    };

    function pump(): void {
      if (ended) return;
      const events = generation.events;
      if (!sse.opened) {
        const last = events[events.length - 1];
        applyUpstreamHeaders(response, events);
        if (!generation.committed && last?.type === 'error') {
          // Nothing was sent yet: the failure can still be an HTTP status.
          finish('error-before-open');
          sse.dispose();
          options.onErrorBeforeOpen(last.error);
          return;
        }
        // Hold the head until the answer exists, so fallbacks and error statuses stay possible.
        if (!generation.committed && !generation.finished) return;
      }
      if (sse.blocked) {
        if (generation.bytesFrom(cursor) > options.maxBufferedBytes) tooSlow();
        return;
      }
      let text = '';
      let terminal = false;
      while (cursor < events.length) {
        const seq = cursor++;
        const event = events[seq];
        if (!event) break;
        text += encode(event, seq);
        if (event.type === 'end' || event.type === 'error') {
          terminal = true;
          break;
        }
      }
      if (terminal) {
        finish('complete');
        sse.end(text);
      } else if (text !== '') {
        sse.write(text);
      }
    }

    function tooSlow(): void {
      const error = new SluiceError('client_too_slow', {
        message: `The client left more than ${options.maxBufferedBytes.toString()} bytes unread (server.maxBufferedBytes); the stream was ended.`,
      });
      // Cancel before unsubscribing, so the generation records why it stopped.
      generation.cancel(error);
      finish('client-too-slow');
      // The cancel above makes the generation log this error next, at about this seq.
      sse.end(encode({ type: 'error', error: errorPayload(error) }, generation.events.length));
      // A client that reads nothing would hold the socket open forever.
      setTimeout(() => response.destroy(), 1000).unref();
    }

    function onClose(): void {
      finish('client-closed');
    }

    const unsubscribe = generation.subscribe(pump);
    response.on('drain', pump);
    response.once('close', onClose);
    // The log may already hold events (a resume, or a generation that finished quickly).
    if (generation.events.length > 0) pump();
  });
}
