// One client following a generation, whatever carries it (an SSE response, a chat on a
// WebSocket): read the log from the client's own cursor, encode each event, hand them to the
// transport's sink, stop after the terminal event (decision 0002). A client that stops reading
// never makes the process buffer without bound: once more than `maxBufferedBytes` wait unsent, the
// sink ends its stream with `client_too_slow`.
import type { ErrorPayload, StreamEvent } from '../contract/stream-event.js';
import type { EventEncoder } from './encoders/openai-chunks.js';
import type { GenerationView } from './generation.js';

/** The transport's side of one client following one generation. */
export interface FollowSink {
  /**
   * True while the client cannot take more now. The loop then stops reading the log, so what waits
   * stays in the log (counted by the loop), and reads again when `onDrain` calls back.
   */
  readonly blocked: boolean;
  /**
   * Bytes handed to the sink that the client has not taken, held by a sink that never blocks (a
   * WebSocket's send buffer). A sink that blocks at its socket's high-water mark reports 0: its
   * backlog is still in the log, where the loop counts it.
   */
  readonly bufferedBytes: number;
  /** Sends encoded events, in order; they came from one read of the log (send them together if you can). */
  write(encoded: readonly string[]): void;
  /** Sends the last encoded events, the terminal one included, and ends this client's stream of the generation. */
  end(encoded: readonly string[]): void;
  /**
   * The client left more than maxBufferedBytes unsent: end its stream with `client_too_slow`. Called
   * while the loop is still subscribed, so that cancelling the generation here records why it stopped.
   */
  tooSlow(): void;
  /** Calls `listener` whenever the sink can take more again; returns the function that stops that. A sink that never blocks has none. */
  onDrain?(listener: () => void): () => void;
  /** Calls `listener` once when the client goes away; returns the function that stops that. */
  onClose?(listener: () => void): () => void;
}

/**
 * For a transport that can still answer with an error status while it has sent nothing (an SSE
 * response before its head): nothing is written until the generation has committed (or finished),
 * so fallbacks and error statuses stay possible.
 */
export interface HeldHead {
  /** True once the head went out (written, or by a heartbeat): from then on nothing is held. */
  readonly sent: boolean;
  /** Called on every read while the head is unsent (to copy headers the provider asked for). */
  prepare(events: readonly StreamEvent[]): void;
  /** The generation failed before committing and nothing was sent: answer with this error instead. */
  fail(error: ErrorPayload): void;
}

export interface FollowOptions {
  readonly generation: GenerationView;
  readonly encode: EventEncoder;
  /** The first sequence number to send (for resumes); default 0. */
  readonly fromSeq?: number;
  /** Bytes a client may leave unsent before it is cut off (server.maxBufferedBytes). */
  readonly maxBufferedBytes: number;
  readonly sink: FollowSink;
  readonly head?: HeldHead;
}

/**
 * Why following ended: the terminal event was sent, the client left (`onClose`), it was too slow,
 * the generation failed before the head (see {@link HeldHead}), or `stop()` was called.
 */
export type FollowEnd = 'complete' | 'client-closed' | 'client-too-slow' | 'error-before-open' | 'stopped';

export interface Follower {
  /** Resolves when this client's part is over; the generation itself may go on for others. */
  readonly done: Promise<FollowEnd>;
  /** Stops following (idempotent). Leaving as the last subscriber cancels an unfinished generation. */
  stop(): void;
}

/** Starts following at once: what the log already holds is read before this returns. */
export function followGeneration(options: FollowOptions): Follower {
  const { generation, encode, sink, head } = options;
  let cursor = options.fromSeq ?? 0;
  let ended = false;
  let resolveDone!: (how: FollowEnd) => void;
  const done = new Promise<FollowEnd>((resolve) => (resolveDone = resolve));
  const stopListening: (() => void)[] = [];

  function finish(how: FollowEnd): void {
    if (ended) return;
    ended = true;
    for (const stop of stopListening) stop();
    resolveDone(how);
  }

  /** True when the head must wait; ends the follow when the generation failed before it. */
  function holdHead(events: readonly StreamEvent[]): boolean {
    if (!head || head.sent) return false;
    head.prepare(events);
    const last = events[events.length - 1];
    if (!generation.committed && last?.type === 'error') {
      finish('error-before-open');
      head.fail(last.error);
      return true;
    }
    return !generation.committed && !generation.finished;
  }

  function pump(): void {
    if (ended) return;
    const events = generation.events;
    if (holdHead(events)) return;
    const waiting = sink.bufferedBytes + (sink.blocked ? generation.bytesFrom(cursor) : 0);
    if (waiting > options.maxBufferedBytes) {
      sink.tooSlow();
      finish('client-too-slow');
      return;
    }
    if (sink.blocked) return;
    const encoded: string[] = [];
    while (cursor < events.length) {
      const seq = cursor++;
      const event = events[seq];
      if (!event) break;
      const text = encode(event, seq);
      if (text !== '') encoded.push(text);
      if (event.type === 'end' || event.type === 'error') {
        finish('complete');
        sink.end(encoded);
        return;
      }
    }
    if (encoded.length > 0) sink.write(encoded);
  }

  stopListening.push(generation.subscribe(pump));
  if (sink.onDrain) stopListening.push(sink.onDrain(pump));
  if (sink.onClose) stopListening.push(sink.onClose(() => finish('client-closed')));
  // The log may already hold events (a resume, or a generation that finished quickly).
  pump();
  return { done, stop: () => finish('stopped') };
}
