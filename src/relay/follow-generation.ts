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
  /** Called once when this client's part is over, as `done` settles (without making that promise). */
  readonly onEnd?: (how: FollowEnd) => void;
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

/**
 * Starts following at once: what the log already holds is read before this returns. A class, not
 * a closure over the loop's state: a held stream keeps its follower for its whole life, and the
 * class keeps no array of unsubscribers, no promise nobody asked for, and one closure (decision 0034).
 */
export function followGeneration(options: FollowOptions): Follower {
  const follower = new GenerationFollower(options);
  follower.start();
  return follower;
}

class GenerationFollower implements Follower {
  readonly #options: FollowOptions;
  #cursor: number;
  #ended: FollowEnd | undefined;
  #done: Promise<FollowEnd> | undefined;
  #resolveDone: ((how: FollowEnd) => void) | undefined;
  #unsubscribe: (() => void) | undefined;
  #stopDrain: (() => void) | undefined;
  #stopClose: (() => void) | undefined;
  /** The one listener: the generation's log grew, or the sink drained. */
  readonly #pump = (): void => this.#read();

  constructor(options: FollowOptions) {
    this.#options = options;
    this.#cursor = options.fromSeq ?? 0;
  }

  start(): void {
    const { generation, sink } = this.#options;
    this.#unsubscribe = generation.subscribe(this.#pump);
    if (sink.onDrain) this.#stopDrain = sink.onDrain(this.#pump);
    if (sink.onClose) this.#stopClose = sink.onClose(this.#onClose);
    // The log may already hold events (a resume, or a generation that finished quickly).
    this.#read();
  }

  /** Made when first asked for; settled at once when following already ended. */
  get done(): Promise<FollowEnd> {
    if (this.#done === undefined) {
      const ended = this.#ended;
      this.#done = ended !== undefined ? Promise.resolve(ended) : new Promise<FollowEnd>((resolve) => (this.#resolveDone = resolve));
    }
    return this.#done;
  }

  stop(): void {
    this.#finish('stopped');
  }

  readonly #onClose = (): void => this.#finish('client-closed');

  #finish(how: FollowEnd): void {
    if (this.#ended !== undefined) return;
    this.#ended = how;
    this.#unsubscribe?.();
    this.#stopDrain?.();
    this.#stopClose?.();
    this.#resolveDone?.(how);
    this.#options.onEnd?.(how);
  }

  /** True when the head must wait; ends the follow when the generation failed before it. */
  #holdHead(events: readonly StreamEvent[]): boolean {
    const { head, generation } = this.#options;
    if (!head || head.sent) return false;
    head.prepare(events);
    const last = events[events.length - 1];
    if (!generation.committed && last?.type === 'error') {
      this.#finish('error-before-open');
      head.fail(last.error);
      return true;
    }
    return !generation.committed && !generation.finished;
  }

  #read(): void {
    if (this.#ended !== undefined) return;
    const { generation, sink, encode } = this.#options;
    const events = generation.events;
    if (this.#holdHead(events)) return;
    const waiting = sink.bufferedBytes + (sink.blocked ? generation.bytesFrom(this.#cursor) : 0);
    if (waiting > this.#options.maxBufferedBytes) {
      sink.tooSlow();
      this.#finish('client-too-slow');
      return;
    }
    if (sink.blocked) return;
    const encoded: string[] = [];
    while (this.#cursor < events.length) {
      const seq = this.#cursor++;
      const event = events[seq];
      if (!event) break;
      const text = encode(event, seq);
      if (text !== '') encoded.push(text);
      if (event.type === 'end' || event.type === 'error') {
        this.#finish('complete');
        sink.end(encoded);
        return;
      }
    }
    if (encoded.length > 0) sink.write(encoded);
  }
}
