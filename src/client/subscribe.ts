// The caller's hub channel as an async iterable of PushEvent, over SSE (GET /api/events read with
// fetch, so the Authorization header works) or WebSocket (GET /api/ws with a fresh ticket each
// time). Either way a drop, or a server close that says to reconnect, reconnects after backoff
// with the last push id, and the gateway replays what was pushed meanwhile: each push arrives
// once, in order. An admin disconnect (SSE `close` with reconnect false, WebSocket code 4000)
// ends the iteration.
import { backoffDelayMs, sleep } from './backoff.js';
import { errorFromResponse, isRecord, SluiceClientError } from './errors.js';
import { parseJson, protocolError, type PushEvent } from './events.js';
import { issueTicket, isRetryableStatus, send, type ClientContext } from './http.js';
import { readServerSentEvents } from './server-sent-events.js';
import { globalWebSocket, openSocket, webSocketBase, type WebSocketConstructor } from './websocket.js';

export interface SubscribeInput {
  /** 'sse' (default): GET /api/events. 'ws': GET /api/ws, which needs a WebSocket constructor. */
  transport?: 'sse' | 'ws';
  /** A push id seen before (e.g. stored across a reload): pushes after it are replayed first. */
  lastEventId?: string;
  /** Aborting ends the iteration, like close(). */
  signal?: AbortSignal;
}

/**
 * Pushes for the caller, in order, each once. Iterate it once. Throws SluiceClientError for an
 * HTTP error that retrying cannot fix (401, 403), and `stream_interrupted` after
 * `retry.maxAttempts` failed reconnections in a row.
 */
export interface Subscription extends AsyncIterable<PushEvent> {
  /** The id of the last push seen; pass it as `lastEventId` to a later subscribe(). */
  readonly lastEventId: string | undefined;
  /** Closes the connection; the iteration ends. */
  close(): void;
}

/** A connection that stayed open this long (ms) was healthy: its drop starts the backoff over. */
const healthyConnectionMs = 10_000;

/** WebSocket close code of an admin disconnect (DELETE /api/connections/:userId): do not come back. */
const adminDisconnectCode = 4000;

/** Throws `websocket_unavailable` synchronously when `transport: 'ws'` has no WebSocket to use. */
export function createSubscription(context: ClientContext, input: SubscribeInput): Subscription {
  const transport = input.transport ?? 'sse';
  let WebSocket: WebSocketConstructor | undefined;
  if (transport === 'ws') {
    WebSocket = context.WebSocket ?? globalWebSocket();
    if (WebSocket === undefined) {
      throw new SluiceClientError(
        'websocket_unavailable',
        "subscribe({ transport: 'ws' }): this runtime has no global WebSocket (Node 20 has none); pass one as the `WebSocket` option of createSluiceClient, e.g. `import WebSocket from 'ws'`, or use transport 'sse'.",
      );
    }
  }
  return new HubSubscription(context, input, WebSocket);
}

class HubSubscription implements Subscription {
  readonly #context: ClientContext;
  readonly #WebSocket: WebSocketConstructor | undefined;
  readonly #controller = new AbortController();
  #lastEventId: string | undefined;
  #iterated = false;

  constructor(context: ClientContext, input: SubscribeInput, WebSocket: WebSocketConstructor | undefined) {
    this.#context = context;
    this.#WebSocket = WebSocket;
    this.#lastEventId = input.lastEventId;
    if (input.signal?.aborted === true) this.#controller.abort();
    else input.signal?.addEventListener('abort', () => this.#controller.abort(), { once: true });
  }

  get lastEventId(): string | undefined {
    return this.#lastEventId;
  }

  close(): void {
    this.#controller.abort();
  }

  [Symbol.asyncIterator](): AsyncIterator<PushEvent> {
    if (this.#iterated) throw new TypeError('A Subscription can be iterated only once.');
    this.#iterated = true;
    return this.#WebSocket !== undefined ? this.#overWebSocket(this.#WebSocket) : this.#overSse();
  }

  async *#overSse(): AsyncGenerator<PushEvent, void, undefined> {
    const signal = this.#controller.signal;
    let failures = 0;
    for (;;) {
      if (signal.aborted) return;
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (this.#lastEventId !== undefined) headers['last-event-id'] = this.#lastEventId;
      let response: Response;
      try {
        response = await send(this.#context, 'GET', '/api/events', { headers, signal });
      } catch (error) {
        if (signal.aborted) return;
        failures = await this.#pause(failures + 1, error);
        continue;
      }
      if (!response.ok) {
        const error = await errorFromResponse(response, 'GET /api/events');
        if (!isRetryableStatus(response.status)) throw error;
        failures = await this.#pause(failures + 1, error);
        continue;
      }
      if (!response.body) throw protocolError('GET /api/events answered 200 without a body');
      const openedAt = Date.now();
      let healthy = false;
      let cause: unknown;
      try {
        for await (const message of readServerSentEvents(response.body)) {
          if (message.event === 'close') {
            // The server ended the stream on purpose: `reconnect` says whether to come back.
            const data = parseJson(message.data, 'the close event');
            if (isRecord(data) && data['reconnect'] === false) return;
            healthy = true;
            break;
          }
          // Without an id it is not a push: the server's own `error` (client_too_slow), then the end.
          if (message.id === undefined) continue;
          const push: PushEvent = { id: message.id, event: message.event ?? 'message', data: parseJson(message.data, `push ${message.id}`) };
          this.#lastEventId = push.id;
          healthy = true;
          yield push;
        }
      } catch (error) {
        if (error instanceof SluiceClientError) throw error;
        cause = error;
      }
      if (signal.aborted) return;
      if (healthy || Date.now() - openedAt >= healthyConnectionMs) failures = 0;
      failures = await this.#pause(failures + 1, cause);
    }
  }

  async *#overWebSocket(WebSocket: WebSocketConstructor): AsyncGenerator<PushEvent, void, undefined> {
    const signal = this.#controller.signal;
    const base = webSocketBase(this.#context.baseUrl);
    let failures = 0;
    for (;;) {
      if (signal.aborted) return;
      let ticket: string;
      try {
        // A ticket is single use: every connection needs its own, and the key stays in a header.
        ticket = await issueTicket(this.#context, signal);
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof SluiceClientError && error.status !== undefined && !isRetryableStatus(error.status)) throw error;
        failures = await this.#pause(failures + 1, error);
        continue;
      }
      const query = new URLSearchParams({ ticket });
      if (this.#lastEventId !== undefined) query.set('lastEventId', this.#lastEventId);
      const socket = openSocket(WebSocket, `${base}/api/ws?${query.toString()}`);
      const onAbort = (): void => socket.close(1000);
      signal.addEventListener('abort', onAbort, { once: true });
      const openedAt = Date.now();
      let healthy = false;
      let closeCode = 1006;
      try {
        for (;;) {
          const next = await socket.next();
          if (next.type === 'close') {
            closeCode = next.code;
            break;
          }
          if (typeof next.data !== 'string') continue;
          const frame = parseJson(next.data, 'a WebSocket frame');
          // Only pushes matter here; pong and error frames answer frames this client never sends.
          if (!isRecord(frame) || frame['type'] !== 'push' || typeof frame['eventId'] !== 'string' || typeof frame['event'] !== 'string') continue;
          this.#lastEventId = frame['eventId'];
          healthy = true;
          yield { id: frame['eventId'], event: frame['event'], data: frame['data'] };
        }
      } finally {
        signal.removeEventListener('abort', onAbort);
        socket.close(1000);
      }
      if (signal.aborted || closeCode === adminDisconnectCode) return;
      // 1012 (the gateway restarts), 1001, 1006 (dropped), 1008 (too slow): come back and replay.
      if (healthy || Date.now() - openedAt >= healthyConnectionMs) failures = 0;
      failures = await this.#pause(failures + 1, new SluiceClientError('stream_interrupted', `The hub WebSocket closed with code ${closeCode.toString()}.`));
    }
  }

  /** Waits before reconnection `attempt`; throws `stream_interrupted` once attempts run out. */
  async #pause(attempt: number, cause: unknown): Promise<number> {
    const retry = this.#context.retry;
    if (attempt > retry.maxAttempts) {
      throw new SluiceClientError('stream_interrupted', `The hub subscription dropped and ${retry.maxAttempts.toString()} reconnections in a row failed; subscribe again with lastEventId '${this.#lastEventId ?? ''}' to replay what was missed.`, cause !== undefined ? { cause } : {});
    }
    await sleep(backoffDelayMs(attempt, retry), this.#controller.signal);
    return attempt;
  }
}
