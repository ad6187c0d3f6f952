// The one SSE response writer of the program. It sends the headers that keep proxies from
// buffering, never compresses, writes whole events only (a write never ends inside a UTF-8
// character or an event), and keeps idle streams alive with a lone comment line. How an event is
// framed is src/sse/format.ts.
import type { ServerResponse } from 'node:http';
import { heartbeat, sseHeaders } from '../../sse/format.js';

export interface SseStreamOptions {
  /** Interval between heartbeats; 0 turns them off. */
  heartbeatMs: number;
  headers?: Readonly<Record<string, string>>;
  /**
   * What a heartbeat writes: a lone comment line by default; a whole event where the API has one
   * of its own (the Messages API's `event: ping`).
   */
  heartbeat?: string;
  /** Called when the head is about to be written because a heartbeat was due. */
  onOpen?: () => void;
}

/**
 * An SSE response. The head is written lazily (by the first write or heartbeat) so that a caller
 * can still answer with an HTTP error status while nothing has been sent.
 */
export class SseStream {
  readonly response: ServerResponse;
  readonly #options: SseStreamOptions;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(response: ServerResponse, options: SseStreamOptions) {
    this.response = response;
    this.#options = options;
    if (options.heartbeatMs > 0) {
      this.#heartbeatTimer = setInterval(this.#beat, options.heartbeatMs);
    }
    response.once('close', () => this.dispose());
  }

  /** True once the head has been written: errors must then go in-band. */
  get opened(): boolean {
    return this.response.headersSent;
  }

  /** True while the socket's buffer is over its high-water mark; write again after 'drain'. */
  get blocked(): boolean {
    return this.response.writableNeedDrain;
  }

  get closed(): boolean {
    return this.#closed || this.response.destroyed;
  }

  open(): void {
    if (this.response.headersSent) return;
    this.response.writeHead(200, { ...sseHeaders, ...this.#options.headers });
  }

  /** Writes whole, already formatted events. Returns false when the caller should wait for 'drain'. */
  write(text: string): boolean {
    if (this.closed) return false;
    this.open();
    return this.response.write(text);
  }

  end(text?: string): void {
    this.dispose();
    if (this.response.writableEnded || this.response.destroyed) return;
    this.open();
    if (text) this.response.end(text);
    else this.response.end();
  }

  readonly #beat = (): void => {
    if (this.closed || this.blocked) return;
    if (!this.opened) this.#options.onOpen?.();
    this.write(this.#options.heartbeat ?? heartbeat);
  };

  /** Stops the heartbeat without writing anything (used when answering with a plain error instead). */
  dispose(): void {
    this.#closed = true;
    clearInterval(this.#heartbeatTimer);
  }
}
