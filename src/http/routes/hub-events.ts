// GET /api/events: the caller's hub channel as Server-Sent Events, the SSE transport of the hub.
// Each push is one event (`id: <seq>`, `event: <name>`, `data: <json>`). A reconnect with
// Last-Event-ID (header, or `lastEventId` in the query for a client that opens a new EventSource
// with a fresh ticket) first gets what it missed, then follows live, with nothing lost or repeated
// in between. The stream ends by itself after hub.maxConnectionAgeMs so long-lived clients spread
// over nodes again, and a client that stops reading is cut off before it costs unbounded memory.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { SluiceError } from '../../errors/sluice-error.js';
import { isPushId, type Hub, type HubCloseReason, type HubTransport, type PushMessage } from '../../hub/hub.js';
import { HubSubscriber } from '../../hub/hub-subscription.js';
import type { Logger } from '../../observability/logger.js';
import { errorPayload } from '../../contract/stream-event.js';
import { callerOf, type RequestContext } from '../request-context.js';
import { releaseRequestHeaders } from '../release-request-headers.js';
import type { RouteHandler } from '../router.js';
import { formatSseEvent, heartbeat } from '../../sse/format.js';
import { shareSseFrame, socketBlocked, writeSharedFrame, writeSseHead, type SharedSseFrame } from '../sse/sse-writer.js';
import { StreamTimers, type TimedStream } from '../sse/stream-timers.js';

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

/** The heartbeat line, framed once for every stream. */
const heartbeatFrame = shareSseFrame(heartbeat);

/**
 * How long one connection may live: maxConnectionAgeMs brought forward by a random share of up to
 * a tenth of it, so connections opened together do not all reconnect together. In whole seconds
 * when that tenth is 10 s or more: the streams' shared timers keep one list per age
 * (StreamTimers), so whole seconds keep the lists to a few hundred however many connections there
 * are, instead of one per connection (decision 0029).
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
  const streams: HubStreams = {
    options,
    random: options.random ?? Math.random,
    timers: new StreamTimers<SseChannel>(options.heartbeatMs),
  };

  return async function hubEvents(context, request, response) {
    const principal = callerOf(context);
    const lastEventId = chooseLastEventId(request.headers['last-event-id'], context.query.get('lastEventId'));
    context.stream = true;
    // A client that left while it was authenticated gets nothing, not even a registration.
    if (response.destroyed) return;

    const channel = new SseChannel(response, context, streams, principal.userId);
    // A client that leaves while the connection registers or the replay is read leaves the hub at
    // once: the request's close listener tells the channel.
    context.closeListener = channel;
    try {
      await channel.subscribe(lastEventId);
    } catch (error) {
      // Nothing was sent yet: the failure is still an HTTP status.
      channel.end();
      throw error;
    }
    // Send the head now, even with nothing replayed: the client learns it is connected.
    channel.openStream();
    // Everything this stream needs from its request was read above; its headers would otherwise
    // stay for as long as the connection does.
    releaseRequestHeaders(request);
    // The handler returns here: the open stream lives on in the request's close listener, the
    // hub's registration and the shared timers, not in two suspended async functions (this one and
    // the request handler's) holding their frames for as long as the connection stays open
    // (decision 0029).
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

/** Events waiting for the socket's 'drain', made when the socket fills and dropped once it is empty. */
interface Backlog {
  queue: Pending[];
  /** The first unsent event in queue. */
  head: number;
  /** Live bytes among the unsent events. */
  liveBytes: number;
  /** What emits the 'drain' the queue waits for, and its listener. */
  readonly emitter: Socket | ServerResponse;
  readonly listener: () => void;
}

/** What the open streams of one route share: its options, and the timers that serve them all. */
interface HubStreams {
  readonly options: HubEventsOptions;
  readonly random: () => number;
  /** Every open stream's `: ping` and end at its maximum age (decision 0029). */
  readonly timers: StreamTimers<SseChannel>;
}

/**
 * One SSE client of the hub, and its hub subscription. Events wait in its own queue while the
 * socket is full, so that each reaches the socket whole and in order; live events waiting there
 * are counted, and past maxBufferedBytes the stream ends with `client_too_slow`. Thousands of
 * these stay open and idle, so each is one object holding only what it needs while idle: no
 * timer, closure or queue of its own (decisions 0029 and 0036).
 */
class SseChannel extends HubSubscriber implements TimedStream {
  readonly #response: ServerResponse;
  /**
   * The request's: its id goes into the head, why the server ended the stream into its log line,
   * and its start is when the connection opened.
   */
  readonly #context: RequestContext;
  readonly #streams: HubStreams;
  /** `opening` until the head is sent: until then a failure can still be an HTTP status. */
  #state: 'opening' | 'open' | 'ended' = 'opening';
  /** This stream's maximum age (ms); 0 when it has none. */
  #ageMs = 0;
  /** Events waiting for the socket's 'drain'; undefined while nothing waits (decision 0036). */
  #backlog: Backlog | undefined;

  constructor(response: ServerResponse, context: RequestContext, streams: HubStreams, userId: string) {
    super(streams.options.hub, streams.options.createConnectionId(), userId);
    this.#response = response;
    this.#context = context;
    this.#streams = streams;
  }

  get transport(): HubTransport {
    return 'sse';
  }

  /** When the request came: a getter, so that an idle connection keeps no number of its own for it. */
  get openedAt(): number {
    return this.#context.startedAt;
  }

  /** Sends the head on the first call; false once the channel ended or the client left. */
  openStream(): boolean {
    const response = this.#response;
    // Destroyed, the response has not necessarily emitted 'close' yet (it does on the next tick).
    if (response.destroyed) return false;
    if (this.#state !== 'opening') return this.#state === 'open';
    this.#state = 'open';
    // x-request-id goes in this one writeHead, not set ahead: node:http would keep a header map
    // for the response's whole life (the route's writesRequestIdHeader).
    writeSseHead(response, { 'x-request-id': this.#context.requestId });
    response.flushHeaders();
    // The replay is delivered in this same turn: let it leave in as few socket writes as possible.
    response.cork();
    process.nextTick(() => response.uncork());
    // Only now, with the head sent, may a heartbeat come.
    const { timers, options, random } = this.#streams;
    if (options.maxConnectionAgeMs > 0) this.#ageMs = connectionAgeMs(options.maxConnectionAgeMs, random);
    timers.add(this, this.#ageMs);
    return true;
  }

  /** Replayed events do not count against maxBufferedBytes: retention bounds them. */
  protected deliverToClient(message: PushMessage, replayed: boolean): boolean {
    if (!this.openStream()) return false;
    const frame = framePush(message);
    if (this.#backlog === undefined && !socketBlocked(this.#response)) {
      writeSharedFrame(this.#response, frame);
      return true;
    }
    if (this.#enqueue(frame.text, !replayed) > this.#streams.options.maxBufferedBytes) {
      this.#tooSlow();
      return false;
    }
    return true;
  }

  /**
   * The shared heartbeat: not while the socket is full, nor ahead of queued events. Written as a
   * push is, one shared Buffer in one socket write: `response.write` leaves about 1.8 kB of garbage
   * a heartbeat (its chunk framing, cork and writev), the shared frame 0.5 kB (decision 0042).
   */
  beat(): void {
    const response = this.#response;
    if (this.#backlog !== undefined || response.destroyed || socketBlocked(response)) return;
    writeSharedFrame(response, heartbeatFrame);
  }

  /** The shared age timer: the stream reached its maximum age. */
  expire(): void {
    this.closeWith({ reason: 'max_connection_age', reconnect: true, message: `The stream reached its maximum age (hub.maxConnectionAgeMs); reconnect with Last-Event-ID.` });
  }

  /** The hub ends the connection: after an admin's disconnect the client should not reconnect. */
  protected closeClient(reason: HubCloseReason): void {
    this.closeWith({ reason: reason.code, reconnect: reason.code === 'shutting_down', message: reason.message });
  }

  /** Ends the stream with a `close` event, after everything already queued for it. */
  closeWith(data: CloseEventData): void {
    if (!this.openStream()) {
      this.end();
      return;
    }
    const last = formatSseEvent({ event: 'close', data: JSON.stringify(data), ...(data.reconnect ? { retry: hubReconnectDelayMs } : {}) });
    // What is queued goes first, all of it: the client is closing anyway, and reading it is what
    // lets the socket finish. The socket's own timeout is not ours to shorten here.
    const rest = this.#takeQueue();
    this.#context.outcome = data.reason;
    this.end();
    this.#endResponse(rest + last);
  }

  /** The client left, or the response was destroyed. */
  responseClosed(): void {
    this.end();
  }

  /** Stops taking events, leaves the hub and the shared timers; idempotent. */
  end(): void {
    if (this.#state === 'ended') return;
    this.#state = 'ended';
    this.#dropBacklog();
    const { timers, options } = this.#streams;
    timers.delete(this, this.#ageMs);
    this.unsubscribe().catch((error: unknown) => options.logger.warn({ err: error, connectionId: this.id }, 'hub: unregistering a connection failed'));
  }

  /** Queues an event behind the unsent ones; returns the live bytes now queued. */
  #enqueue(text: string, live: boolean): number {
    const liveBytes = live ? Buffer.byteLength(text) : 0;
    let backlog = this.#backlog;
    if (backlog === undefined) {
      // The socket's 'drain', not the response's: a shared frame is written to the socket itself.
      const emitter = this.#response.socket ?? this.#response;
      const listener = (): void => this.#flush();
      emitter.on('drain', listener);
      backlog = this.#backlog = { queue: [], head: 0, liveBytes: 0, emitter, listener };
    }
    backlog.queue.push({ text, liveBytes });
    return (backlog.liveBytes += liveBytes);
  }

  /** Forgets what waits and stops waiting for 'drain'. */
  #dropBacklog(): void {
    const backlog = this.#backlog;
    this.#backlog = undefined;
    backlog?.emitter.off('drain', backlog.listener);
  }

  #flush(): void {
    const backlog = this.#backlog;
    const response = this.#response;
    if (this.#state !== 'open' || backlog === undefined) return;
    const { queue } = backlog;
    response.cork();
    while (backlog.head < queue.length && !socketBlocked(response)) {
      const item = queue[backlog.head++];
      if (!item) break;
      backlog.liveBytes -= item.liveBytes;
      response.write(item.text);
    }
    process.nextTick(() => response.uncork());
    if (backlog.head === queue.length) {
      // All sent: an idle stream keeps no queue and no 'drain' listener.
      this.#dropBacklog();
    } else if (backlog.head > 1024 && backlog.head * 2 > queue.length) {
      // Drop the sent front now and then, so a long backlog does not keep its sent half alive.
      backlog.queue = queue.slice(backlog.head);
      backlog.head = 0;
    }
  }

  #takeQueue(): string {
    const backlog = this.#backlog;
    if (backlog === undefined) return '';
    let text = '';
    for (let index = backlog.head; index < backlog.queue.length; index++) text += backlog.queue[index]?.text ?? '';
    return text;
  }

  #endResponse(text: string): void {
    const response = this.#response;
    if (!response.writableEnded && !response.destroyed) response.end(text);
  }

  #tooSlow(): void {
    const { maxBufferedBytes } = this.#streams.options;
    const error = new SluiceError('client_too_slow', {
      message: `The client left more than ${maxBufferedBytes.toString()} bytes of pushes unread (server.maxBufferedBytes); the stream was ended. Reconnect with Last-Event-ID to replay what is retained.`,
    });
    this.#context.outcome = 'client_too_slow';
    this.end();
    this.#endResponse(formatSseEvent({ event: 'error', data: JSON.stringify(errorPayload(error)) }));
    // A client that reads nothing would hold the socket open forever.
    const response = this.#response;
    setTimeout(() => response.destroy(), 1000).unref();
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
