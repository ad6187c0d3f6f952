// The one SSE writer of the program. It formats events so that every common client parses them
// (PROTOCOLS.md, "What Sluice writes"), sends the headers that keep proxies from buffering, never
// compresses, writes whole events only (a write never ends inside a UTF-8 character or an event),
// and keeps idle streams alive with a lone comment line.
import type { ServerResponse } from 'node:http';

export interface SseMessage {
  data: string;
  event?: string;
  id?: string;
  /** Reconnection delay in ms; sent inside an event, never on its own (openai-python breaks on that). */
  retry?: number;
}

/**
 * The heartbeat: a comment line with no blank line after it. `: ping\n\n` would make
 * @microsoft/fetch-event-source call onmessage with empty data, breaking its users' JSON.parse.
 */
export const heartbeat = ': ping\n';

const lineBreak = /\r\n|\r|\n/;

/** Formats one event. Multi-line data becomes several `data:` lines; CR/LF in `event` or `id` is refused. */
export function formatSseEvent(message: SseMessage): string {
  let text = '';
  if (message.event !== undefined) {
    assertSingleLine('event', message.event);
    text += `event: ${message.event}\n`;
  }
  if (message.id !== undefined) {
    assertSingleLine('id', message.id);
    if (message.id.includes('\0')) throw new TypeError('SSE id must not contain NUL (clients ignore such ids)');
    text += `id: ${message.id}\n`;
  }
  if (message.retry !== undefined) {
    // A safe integer, so that toString() gives plain digits (1e21 would print as "1e+21", which
    // clients must ignore: `retry` is only honoured when it is all ASCII digits).
    if (!Number.isSafeInteger(message.retry) || message.retry < 0) throw new TypeError('SSE retry must be a non-negative integer');
    text += `retry: ${message.retry.toString()}\n`;
  }
  const data = message.data;
  if (data.includes('\n') || data.includes('\r')) {
    for (const line of data.split(lineBreak)) text += `data: ${line}\n`;
  } else {
    text += `data: ${data}\n`;
  }
  return `${text}\n`;
}

function assertSingleLine(field: string, value: string): void {
  if (value.includes('\n') || value.includes('\r')) throw new TypeError(`SSE ${field} must not contain CR or LF`);
}

export const sseHeaders: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};

export interface SseStreamOptions {
  /** Interval between heartbeats; 0 turns them off. */
  heartbeatMs: number;
  headers?: Readonly<Record<string, string>>;
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
    this.write(heartbeat);
  };

  /** Stops the heartbeat without writing anything (used when answering with a plain error instead). */
  dispose(): void {
    this.#closed = true;
    clearInterval(this.#heartbeatTimer);
  }
}
