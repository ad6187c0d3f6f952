// GET /api/events: the caller's hub channel as Server-Sent Events, the SSE transport of the hub.
// Each push is one event (`id: <seq>`, `event: <name>`, `data: <json>`). A reconnect with
// Last-Event-ID (header, or `lastEventId` in the query for a client that opens a new EventSource
// with a fresh ticket) first gets what it missed, then follows live, with nothing lost or repeated
// in between. The stream ends by itself after hub.maxConnectionAgeMs so long-lived clients spread
// over nodes again, and a client that stops reading is cut off before it costs unbounded memory.
import type { ServerResponse } from 'node:http';
import { SluiceError } from '../../errors/sluice-error.js';
import { isPushId, type Hub, type HubCloseReason, type HubConnection, type PushMessage } from '../../hub/hub.js';
import type { Logger } from '../../observability/logger.js';
import { errorPayload } from '../../contract/stream-event.js';
import { callerOf } from '../request-context.js';
import type { RouteHandler } from '../router.js';
import { formatSseEvent } from '../../sse/format.js';
import { SseStream } from '../sse/sse-writer.js';

export interface HubEventsOptions {
  readonly hub: Hub;
  /** Interval between `: ping` lines (server.heartbeatMs); 0 turns them off. */
  readonly heartbeatMs: number;
  /**
   * Bytes of pushes a client may leave unsent before its stream ends with `client_too_slow`
   * (server.maxBufferedBytes). A replay on connect does not count: it is bounded by retention.
   */
  readonly maxBufferedBytes: number;
  /** Streams end after 90 to 100 % of this (ms, hub.maxConnectionAgeMs); 0 means never. */
  readonly maxConnectionAgeMs: number;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  /** Connection ids: short ASCII, unique across nodes. */
  readonly createConnectionId: () => string;
  /** In [0, 1); spreads the max-age ends of connections opened together. Default Math.random. */
  readonly random?: () => number;
  readonly logger: Logger;
}

/**
 * The reconnection delay (ms) sent with the `close` event of a stream that reached its maximum
 * age: EventSource waits this long before it reconnects with Last-Event-ID.
 */
export const hubReconnectDelayMs = 1000;

/** The share of maxConnectionAgeMs by which a connection's end is brought forward at random. */
const ageJitter = 0.1;

/** What the last event of a stream the server ended says (`event: close`). */
interface CloseEventData {
  readonly reason: 'max_connection_age' | HubCloseReason['code'];
  /** True when the client should reconnect (with Last-Event-ID); false when it should stop. */
  readonly reconnect: boolean;
  readonly message: string;
}

export function createHubEventsRoute(options: HubEventsOptions): RouteHandler {
  const random = options.random ?? Math.random;

  return async function hubEvents(context, request, response) {
    const principal = callerOf(context);
    const lastEventId = chooseLastEventId(request.headers['last-event-id'], context.query.get('lastEventId'));
    context.stream = true;
    const closed = new Promise<void>((resolve) => response.once('close', () => resolve()));

    const channel = new SseChannel(response, options, (outcome) => (context.outcome = outcome));
    const connection: HubConnection = {
      id: options.createConnectionId(),
      userId: principal.userId,
      transport: 'sse',
      openedAt: options.now(),
      deliver: (message) => channel.deliver(message),
      close: (reason) => channel.close({ reason: reason.code, reconnect: reason.code === 'shutting_down', message: reason.message }),
    };
    // Registered before the replay is read, so a push that lands in between is held, not lost;
    // the channel drops those the replay already holds.
    const unregister = await options.hub.register(connection);
    const release = (): void => {
      unregister().catch((error: unknown) => options.logger.warn({ err: error, connectionId: connection.id }, 'hub: unregistering a connection failed'));
    };
    channel.onEnd = release;
    if (response.destroyed) {
      channel.end();
      return;
    }
    let replayed: PushMessage[] = [];
    try {
      if (lastEventId !== undefined) replayed = await options.hub.replay(principal.userId, lastEventId);
    } catch (error) {
      // Nothing was sent yet: the failure is still an HTTP status.
      channel.end();
      throw error;
    }
    channel.start(replayed);

    let ageTimer: NodeJS.Timeout | undefined;
    if (options.maxConnectionAgeMs > 0) {
      const ageMs = options.maxConnectionAgeMs - Math.floor(random() * options.maxConnectionAgeMs * ageJitter);
      ageTimer = setTimeout(() => {
        channel.close({ reason: 'max_connection_age', reconnect: true, message: `The stream reached its maximum age (hub.maxConnectionAgeMs); reconnect with Last-Event-ID.` });
      }, ageMs);
    }
    await closed;
    clearTimeout(ageTimer);
    channel.end();
  };
}

/**
 * The Last-Event-ID a request carries: the header (what EventSource sends when it reconnects by
 * itself) wins over the `lastEventId` query parameter (what a client that opens a new EventSource
 * sets). Empty means none. Throws `invalid_request` naming it when it is not a push id.
 */
export function chooseLastEventId(header: string | string[] | undefined, query: string | null): string | undefined {
  const fromHeader = Array.isArray(header) ? header[0] : header;
  if (fromHeader !== undefined && fromHeader !== '') {
    if (!isPushId(fromHeader)) throw new SluiceError('invalid_request', { param: 'Last-Event-ID', message: 'Last-Event-ID: must be the decimal id of a hub event (1 to 15 digits).' });
    return fromHeader;
  }
  if (query !== null && query !== '') {
    if (!isPushId(query)) throw new SluiceError('invalid_request', { param: 'lastEventId', message: 'lastEventId: must be the decimal id of a hub event (1 to 15 digits).' });
    return query;
  }
  return undefined;
}

interface Pending {
  readonly text: string;
  /** Bytes that count against maxBufferedBytes (0 for replayed events). */
  readonly liveBytes: number;
}

/**
 * One SSE client of the hub. Events wait in its own queue while the socket is full, so that each
 * reaches the socket whole and in order; live events waiting there are counted, and past
 * maxBufferedBytes the stream ends with `client_too_slow`.
 */
class SseChannel {
  /** Called once, when the channel stops taking events (the connection must leave the hub). */
  onEnd: (() => void) | undefined;
  readonly #response: ServerResponse;
  readonly #options: HubEventsOptions;
  #sse: SseStream | undefined;
  /** Pushes that arrived before start(): delivered after the replay, minus what it holds. */
  #early: PushMessage[] | undefined = [];
  #closeBeforeStart: CloseEventData | undefined;
  #queue: Pending[] = [];
  #head = 0;
  #queuedLiveBytes = 0;
  #ended = false;
  /** Records why the server ended the stream, for the request's log line. */
  readonly #report: (outcome: string) => void;

  constructor(response: ServerResponse, options: HubEventsOptions, report: (outcome: string) => void) {
    this.#response = response;
    this.#options = options;
    this.#report = report;
  }

  /** Opens the stream, writes the replay and what arrived meanwhile, then goes live. */
  start(replayed: readonly PushMessage[]): void {
    // The client may have left while the replay was read; the handler then ends the channel.
    if (this.#ended || this.#response.destroyed) return;
    const sse = new SseStream(this.#response, { heartbeatMs: this.#options.heartbeatMs });
    this.#sse = sse;
    sse.open();
    // Send the head now: the client learns it is connected without waiting for a first event.
    this.#response.flushHeaders();
    this.#response.on('drain', this.#flush);
    const early = this.#early ?? [];
    this.#early = undefined;
    const replayedIds = new Set(replayed.map((message) => message.id));
    for (const message of replayed) this.#enqueue(formatPush(message), false);
    for (const message of early) if (!replayedIds.has(message.id)) this.#enqueue(formatPush(message), true);
    if (this.#closeBeforeStart) this.close(this.#closeBeforeStart);
    else this.#flush();
  }

  deliver(message: PushMessage): boolean {
    if (this.#ended) return false;
    if (this.#early) {
      this.#early.push(message);
      return true;
    }
    const text = formatPush(message);
    if (this.#head === this.#queue.length && this.#sse?.blocked === false) {
      this.#sse.write(text);
      return true;
    }
    this.#enqueue(text, true);
    if (this.#queuedLiveBytes > this.#options.maxBufferedBytes) {
      this.#tooSlow();
      return false;
    }
    return true;
  }

  /** Ends the stream with a `close` event, after everything already queued for it. */
  close(data: CloseEventData): void {
    if (this.#ended) return;
    if (!this.#sse) {
      this.#closeBeforeStart = data;
      return;
    }
    const last = formatSseEvent({ event: 'close', data: JSON.stringify(data), ...(data.reconnect ? { retry: hubReconnectDelayMs } : {}) });
    // What is queued goes first, all of it: the client is closing anyway, and reading it is what
    // lets the socket finish. The socket's own timeout is not ours to shorten here.
    const rest = this.#takeQueue();
    this.#report(data.reason);
    this.end();
    this.#sse.end(rest + last);
  }

  /** Stops taking events and leaves the hub; idempotent. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#response.off('drain', this.#flush);
    this.#sse?.dispose();
    this.#queue = [];
    this.#head = 0;
    this.#queuedLiveBytes = 0;
    this.onEnd?.();
  }

  #enqueue(text: string, live: boolean): void {
    const liveBytes = live ? Buffer.byteLength(text) : 0;
    this.#queue.push({ text, liveBytes });
    this.#queuedLiveBytes += liveBytes;
  }

  readonly #flush = (): void => {
    const sse = this.#sse;
    if (this.#ended || !sse) return;
    this.#response.cork();
    while (this.#head < this.#queue.length && !sse.blocked) {
      const item = this.#queue[this.#head++];
      if (!item) break;
      this.#queuedLiveBytes -= item.liveBytes;
      sse.write(item.text);
    }
    process.nextTick(() => this.#response.uncork());
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      // Drop the sent front now and then, so a long backlog does not keep its sent half alive.
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  };

  #takeQueue(): string {
    let text = '';
    for (let index = this.#head; index < this.#queue.length; index++) text += this.#queue[index]?.text ?? '';
    return text;
  }

  #tooSlow(): void {
    const sse = this.#sse;
    if (!sse) return;
    const error = new SluiceError('client_too_slow', {
      message: `The client left more than ${this.#options.maxBufferedBytes.toString()} bytes of pushes unread (server.maxBufferedBytes); the stream was ended. Reconnect with Last-Event-ID to replay what is retained.`,
    });
    this.#report('client_too_slow');
    this.end();
    sse.end(formatSseEvent({ event: 'error', data: JSON.stringify(errorPayload(error)) }));
    // A client that reads nothing would hold the socket open forever.
    setTimeout(() => this.#response.destroy(), 1000).unref();
  }
}

/**
 * A push is delivered to every connection of its target one after another, so the last one
 * formatted is remembered: a broadcast to 5000 streams is formatted once, not 5000 times.
 */
let lastFormatted: { message: PushMessage; text: string } | undefined;

function formatPush(message: PushMessage): string {
  if (lastFormatted?.message !== message) lastFormatted = { message, text: formatSseEvent({ id: message.id, event: message.event, data: message.json }) };
  return lastFormatted.text;
}
