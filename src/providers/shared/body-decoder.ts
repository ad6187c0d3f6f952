// How an accepted response's body becomes events: read by read, synchronously, so the HTTP shell
// (http-upstream.ts) pushes each read's events on as they are decoded, with no promise and no
// suspended generator between the socket and the generation (decision 0034).
import type { StreamEvent } from '../../contract/stream-event.js';
import { SseScanner, type SseReadOptions, type SseSink } from './sse-reader.js';

/** Decodes one response body, read by read. */
export interface BodyDecoder {
  /**
   * Decodes one read. Throws when the upstream's answer is an error or malformed; the events
   * decoded before the throw are kept for `take`, so they still reach the client.
   */
  read(bytes: Buffer): void;
  /** True once the answer's end marker was read: the rest of the body is not read. */
  readonly done: boolean;
  /** No more reads (the body ended, or `done`): adds the closing events, or throws when the answer was cut short. */
  finish(): void;
  /** The events decoded since the last call, or undefined when there are none. */
  take(): StreamEvent[] | undefined;
}

/**
 * A decoder's events since the last `take`: the part every decoder shares. A subclass pushes onto
 * `pending`, which is swapped out (not copied) when taken.
 */
export abstract class EventBatcher {
  protected pending: StreamEvent[] = [];

  take(): StreamEvent[] | undefined {
    if (this.pending.length === 0) return undefined;
    const events = this.pending;
    this.pending = [];
    return events;
  }
}

/** What an SSE-based decoder does with the events the scanner completes (sse-reader.ts). */
export interface SseEventDecoder<T = never> extends SseSink<T> {
  readonly done: boolean;
  /** The body ended, or `done`: adds the closing events, or throws when the answer was cut short. */
  finish(): void;
  take(): StreamEvent[] | undefined;
}

/** An SSE body: the scanner finds its events in the reads and hands each to `events` as it completes. */
export class SseBodyDecoder<T = never> implements BodyDecoder {
  readonly #scanner: SseScanner<T>;
  readonly #events: SseEventDecoder<T>;

  constructor(options: SseReadOptions, events: SseEventDecoder<T>) {
    this.#events = events;
    this.#scanner = new SseScanner<T>(options, events);
  }

  get done(): boolean {
    return this.#events.done;
  }

  read(bytes: Buffer): void {
    this.#scanner.feed(bytes);
    const failure = this.#scanner.failure;
    if (failure !== undefined) throw failure;
  }

  finish(): void {
    if (!this.#events.done) {
      // An event left without its closing blank line is still dispatched (sse-reader.ts).
      this.#scanner.finish();
      const failure = this.#scanner.failure;
      if (failure !== undefined) throw failure;
    }
    this.#events.finish();
  }

  take(): StreamEvent[] | undefined {
    return this.#events.take();
  }
}
