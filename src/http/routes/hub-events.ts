// GET /api/events: the caller's hub channel as Server-Sent Events, the SSE transport of the hub.
// Each push is one event (`id: <seq>`, `event: <name>`, `data: <json>`). A reconnect with
// Last-Event-ID (header, or `lastEventId` in the query for a client that opens a new EventSource
// with a fresh ticket) first gets what it missed, then follows live, with nothing lost or repeated
// in between. The stream ends by itself after hub.maxConnectionAgeMs so long-lived clients spread
// over nodes again, and a client that stops reading is cut off before it costs unbounded memory.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { SluiceError } from '../../errors/sluice-error.js';
import { isPushId, type Hub, type HubCloseReason, type PushMessage } from '../../hub/hub.js';
import { subscribeToHub, type HubSink } from '../../hub/hub-subscription.js';
import type { Logger } from '../../observability/logger.js';
import { errorPayload } from '../../contract/stream-event.js';
import { callerOf } from '../request-context.js';
import { onResponseClose } from '../on-response-close.js';
import type { RouteHandler } from '../router.js';
import { formatSseEvent } from '../../sse/format.js';
import { shareSseFrame, SseStream, type SharedSseFrame } from '../sse/sse-writer.js';

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

/**
 * How long one connection may live: maxConnectionAgeMs brought forward by a random share of up to
 * a tenth of it, so connections opened together do not all reconnect together. In whole seconds
 * when that tenth is 10 s or more: timers of one duration share one list in Node, so whole seconds
 * keep the lists to a few hundred however many connections there are, instead of one per
 * connection (decision 0029).
 */
export function connectionAgeMs(maxConnectionAgeMs: number, random: () => number): number {
  const spreadMs = maxConnectionAgeMs * ageJitter;
  const stepMs = spreadMs >= 10_000 ? 1000 : 1;
  return maxConnectionAgeMs - Math.floor((random() * spreadMs) / stepMs) * stepMs;
}

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

    const channel = new SseChannel(response, options, (outcome) => (context.outcome = outcome));
    let ageTimer: NodeJS.Timeout | undefined;
    // A client that leaves while the connection registers or the replay is read leaves the hub at
    // once, and so does one that left before this line (while it was authenticated).
    onResponseClose(response, () => {
      channel.end();
      clearTimeout(ageTimer);
    });
    const connectionId = options.createConnectionId();
    const { subscription, ready } = subscribeToHub({
      hub: options.hub,
      connection: { id: connectionId, userId: principal.userId, transport: 'sse', openedAt: options.now() },
      lastEventId,
      sink: channel,
    });
    channel.onEnd = () => {
      subscription.unsubscribe().catch((error: unknown) => options.logger.warn({ err: error, connectionId }, 'hub: unregistering a connection failed'));
    };
    try {
      await ready;
    } catch (error) {
      // Nothing was sent yet: the failure is still an HTTP status.
      channel.end();
      throw error;
    }
    // A client gone while it registered (its close listener has ended the channel) gets nothing opened.
    if (response.destroyed) return;
    // Send the head now, even with nothing replayed: the client learns it is connected.
    channel.open();

    if (options.maxConnectionAgeMs > 0) {
      const ageMs = connectionAgeMs(options.maxConnectionAgeMs, random);
      ageTimer = setTimeout(() => {
        channel.closeWith({ reason: 'max_connection_age', reconnect: true, message: `The stream reached its maximum age (hub.maxConnectionAgeMs); reconnect with Last-Event-ID.` });
      }, ageMs);
    }
    // The handler returns here: the open stream lives on in its listeners and the hub's
    // registration, not in two suspended async functions (this one and the request handler's)
    // holding their frames for as long as the connection stays open (decision 0029).
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
 * One SSE client of the hub, the sink its hub subscription delivers to. Events wait in its own
 * queue while the socket is full, so that each reaches the socket whole and in order; live events
 * waiting there are counted, and past maxBufferedBytes the stream ends with `client_too_slow`.
 */
class SseChannel implements HubSink {
  /** Called once, when the channel stops taking events (the connection must leave the hub). */
  onEnd: (() => void) | undefined;
  readonly #response: ServerResponse;
  readonly #options: HubEventsOptions;
  /** Created when the stream opens: not before the replay was read, so its failure can still be a status. */
  #sse: SseStream | undefined;
  /** The socket whose 'drain' resumes the queue (the response's, when it has none). */
  #socket: Socket | undefined;
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

  /** The stream, opened (and its head sent) on the first call; undefined once the channel ended or the client left. */
  open(): SseStream | undefined {
    if (this.#ended) return undefined;
    if (this.#sse) return this.#sse;
    if (this.#response.destroyed) return undefined;
    const sse = new SseStream(this.#response, { heartbeatMs: this.#options.heartbeatMs });
    this.#sse = sse;
    sse.open();
    this.#response.flushHeaders();
    // The socket's 'drain', not the response's: a shared frame is written to the socket itself.
    this.#socket = this.#response.socket ?? undefined;
    (this.#socket ?? this.#response).on('drain', this.#flush);
    // The replay is delivered in this same turn: let it leave in as few socket writes as possible.
    this.#response.cork();
    process.nextTick(() => this.#response.uncork());
    return sse;
  }

  /** Replayed events do not count against maxBufferedBytes: retention bounds them. */
  deliver(message: PushMessage, replayed: boolean): boolean {
    const sse = this.open();
    if (!sse) return false;
    const frame = framePush(message);
    if (this.#head === this.#queue.length && !sse.socketBlocked) {
      sse.writeShared(frame);
      return true;
    }
    this.#enqueue(frame.text, !replayed);
    if (this.#queuedLiveBytes > this.#options.maxBufferedBytes) {
      this.#tooSlow();
      return false;
    }
    return true;
  }

  /** The hub ends the connection: after an admin's disconnect the client should not reconnect. */
  close(reason: HubCloseReason): void {
    this.closeWith({ reason: reason.code, reconnect: reason.code === 'shutting_down', message: reason.message });
  }

  /** Ends the stream with a `close` event, after everything already queued for it. */
  closeWith(data: CloseEventData): void {
    const sse = this.open();
    if (!sse) {
      this.end();
      return;
    }
    const last = formatSseEvent({ event: 'close', data: JSON.stringify(data), ...(data.reconnect ? { retry: hubReconnectDelayMs } : {}) });
    // What is queued goes first, all of it: the client is closing anyway, and reading it is what
    // lets the socket finish. The socket's own timeout is not ours to shorten here.
    const rest = this.#takeQueue();
    this.#report(data.reason);
    this.end();
    sse.end(rest + last);
  }

  /** Stops taking events and leaves the hub; idempotent. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    (this.#socket ?? this.#response).off('drain', this.#flush);
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
    while (this.#head < this.#queue.length && !sse.socketBlocked) {
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
 * framed is remembered: a broadcast to 5000 streams is formatted and framed once, and every
 * stream is written the same Buffer (docs/decisions/0024-push-fan-out.md).
 */
let lastFramed: { message: PushMessage; frame: SharedSseFrame } | undefined;

function framePush(message: PushMessage): SharedSseFrame {
  if (lastFramed?.message !== message) lastFramed = { message, frame: shareSseFrame(formatSseEvent({ id: message.id, event: message.event, data: message.json })) };
  return lastFramed.frame;
}
