// The one SSE response writer of the program. It sends the headers that keep proxies from
// buffering, never compresses, writes whole events only (a write never ends inside a UTF-8
// character or an event), and keeps idle streams alive with a lone comment line. How an event is
// framed is src/sse/format.ts.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { heartbeat, sseHeaders } from '../../sse/format.js';
import { onResponseClose } from '../on-response-close.js';

/**
 * One event formatted once for many streams (a hub push broadcast to thousands of connections):
 * its text, and the same text framed as one HTTP/1.1 chunk (`<size in hex>\r\n<text>\r\n`,
 * RFC 9112 section 7.1), the bytes `response.write(text)` would put on a chunked response.
 */
export interface SharedSseFrame {
  readonly text: string;
  readonly chunk: Buffer;
}

/** Frames `text` (whole, already formatted events) once, for {@link writeSharedFrame}. */
export function shareSseFrame(text: string): SharedSseFrame {
  return { text, chunk: Buffer.from(`${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`) };
}

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
 * Writes an SSE response's head (200, the streaming headers, and `headers`) unless it is written
 * already.
 */
export function writeSseHead(response: ServerResponse, headers?: Readonly<Record<string, string>>): void {
  if (response.headersSent) return;
  response.writeHead(200, { ...sseHeaders, ...headers });
}

/**
 * True while the response or its socket is over its high-water mark: write again after the
 * socket's 'drain' (a shared frame's write does not mark the response; see {@link writeSharedFrame}).
 */
export function socketBlocked(response: ServerResponse): boolean {
  return response.writableNeedDrain || (response.socket?.writableNeedDrain ?? false);
}

/**
 * Writes an event framed once for many streams to a response whose head is written. On a chunked
 * HTTP/1.1 response whose head has left and which owns its socket, the frame's chunk bytes go to
 * the socket as they are: one shared Buffer and one socket write, instead of the four writes, the
 * cork and the size string `response.write` makes per call (a broadcast to 5000 streams;
 * docs/decisions/0024-push-fan-out.md). The bytes on the wire are the same, and in the same order
 * as other writes (the response writes straight to its socket once its head is out). Anything else
 * (HTTP/1.0, a pipelined response waiting for its socket) takes `response.write`. Returns false
 * when the caller should wait for the socket's 'drain' (see {@link socketBlocked}).
 */
export function writeSharedFrame(response: ServerResponse, frame: SharedSseFrame): boolean {
  const socket = response.socket;
  if (socket !== null && response.chunkedEncoding && !response.writableEnded && ownsSocket(socket, response)) return socket.write(frame.chunk);
  return response.write(frame.text);
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
    // A response already closed (the client left while the route awaited) stops the heartbeat too.
    onResponseClose(response, () => this.dispose());
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
    writeSseHead(this.response, this.#options.headers);
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

/**
 * True when `socket` serves `response` now and nothing of the response waits in front of the
 * socket, so that bytes written to the socket follow everything the response wrote. node:http's
 * own fields, stable since its first versions: the socket's `_httpMessage` is the response it is
 * writing (a pipelined response behind it has no socket yet), and `_headerSent` turns true once
 * the head has gone to the socket (`headersSent` is already true when the head is only built,
 * waiting to go out with the first body write).
 */
function ownsSocket(socket: Socket, response: ServerResponse): boolean {
  const internals = response as unknown as { _headerSent?: unknown };
  // A response's writableLength is what it buffers itself plus its socket's.
  return (socket as { _httpMessage?: unknown })._httpMessage === response && internals._headerSent === true && response.writableLength === socket.writableLength;
}
