// The part of the WebSocket API this library uses, written out so that the browser's WebSocket
// and the `ws` package's (Node 20 has no global one) both fit, and a helper that turns one
// socket's messages and close into something a loop can await.

/** The bivariance of a method, for a handler property: lets DOM and `ws` event types both fit. */
type Handler<E> = { bivariance(event: E): void }['bivariance'];

/** The minimum of a WebSocket instance used here (WHATWG WebSocket; `ws` implements it). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
  close(code?: number, reason?: string): void;
}

/** `WebSocket` in browsers and Node ≥ 22; `import WebSocket from 'ws'` in Node 20. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The global WebSocket of this runtime, if it has one. */
export function globalWebSocket(): WebSocketConstructor | undefined {
  return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
}

export type SocketSignal = { type: 'message'; data: unknown } | { type: 'close'; code: number; reason: string };

/**
 * Opens `url` and returns a pull interface over its messages and its close, in order. The
 * close is always the last signal (an error is followed by a close, per the WHATWG spec).
 */
export function openSocket(WebSocket: WebSocketConstructor, url: string): { next(): Promise<SocketSignal>; close(code?: number): void } {
  const queue: SocketSignal[] = [];
  let wake: (() => void) | undefined;
  const push = (signal: SocketSignal): void => {
    queue.push(signal);
    wake?.();
    wake = undefined;
  };
  const socket = new WebSocket(url);
  socket.onmessage = (event) => push({ type: 'message', data: event.data });
  socket.onclose = (event) => push({ type: 'close', code: event.code, reason: event.reason });
  // An error is always followed by a close event, which carries what the loop needs.
  socket.onerror = () => undefined;
  return {
    async next() {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return queue.shift() as SocketSignal;
    },
    close(code = 1000) {
      try {
        socket.close(code);
      } catch {
        // Closing a socket that is still connecting throws in some runtimes; it is going anyway.
      }
      // Make the loop see the end at once, whether or not the runtime still fires its close event.
      push({ type: 'close', code, reason: 'closed by the client' });
    },
  };
}

/** `http://h/p` → `ws://h/p`, `https:` → `wss:`; a '' base is the page's own origin. */
export function webSocketBase(baseUrl: string): string {
  const base = baseUrl !== '' ? baseUrl : ((globalThis as { location?: { origin: string } }).location?.origin ?? '');
  if (!/^https?:\/\//i.test(base)) throw new TypeError(`baseUrl must be an http(s) URL to open a WebSocket, not "${base}".`);
  return base.replace(/^http/i, 'ws');
}
