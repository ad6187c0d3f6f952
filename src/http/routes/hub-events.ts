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
import { subscribeToHub, type HubSink, type HubSubscription } from '../../hub/hub-subscription.js';
import type { Logger } from '../../observability/logger.js';
import { errorPayload } from '../../contract/stream-event.js';
import { callerOf, type RequestContext } from '../request-context.js';
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

    const channel = new SseChannel(response, context, streams);
    // A client that leaves while the connection registers or the replay is read leaves the hub at
    // once: the request's close listener tells the channel.
    context.closeListener = channel;
    try {
      await channel.subscribe(principal.userId, lastEventId);
    } catch (error) {
      // Nothing was sent yet: the failure is still an HTTP status.
      channel.end();
      throw error;
    }
    // Send the head now, even with nothing replayed: the client learns it is connected.
    channel.open();
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

/** What the open streams of one route share: its options, and the timers that serve them all. */
interface HubStreams {
  readonly options: HubEventsOptions;
  readonly random: () => number;
  /** Every open stream's `: ping` and end at its maximum age (decision 0029). */
  readonly timers: StreamTimers<SseChannel>;
}

/**
 * One SSE client of the hub, the sink its hub subscription delivers to. Events wait in its own
 * queue while the socket is full, so that each reaches the socket whole and in order; live events
 * waiting there are counted, and past maxBufferedBytes the stream ends with `client_too_slow`.
 * Thousands of these stay open and idle, so each holds only what it needs while idle: no timer,
 * closure or queue of its own (decision 0029).
 */
class SseChannel implements HubSink, TimedStream {
  readonly #response: ServerResponse;
  /** The request's: its id goes into the head, and why the server ended the stream into its log line. */
  readonly #context: RequestContext;
  readonly #streams: HubStreams;
  #subscription: HubSubscription | undefined;
  /** `opening` until the head is sent: until then a failure can still be an HTTP status. */
  #state: 'opening' | 'open' | 'ended' = 'opening';
  /** This stream's maximum age (ms); 0 when it has none. */
  #ageMs = 0;
  /** Events waiting for the socket's 'drain'; undefined while nothing waits. */
  #queue: Pending[] | undefined;
  #head = 0;
  #queuedLiveBytes = 0;
  /** While the queue waits: what emits the 'drain' it waits for, and its listener. */
  #drain: { readonly emitter: Socket | ServerResponse; readonly listener: () => void } | undefined;

  constructor(response: ServerResponse, context: RequestContext, streams: HubStreams) {
    this.#response = response;
    this.#context = context;
    this.#streams = streams;
  }

  /** Registers the connection with the hub; settles once the replay is delivered and pushes flow live. */
  subscribe(userId: string, lastEventId: string | undefined): Promise<void> {
    const { hub, createConnectionId, now } = this.#streams.options;
    const { subscription, ready } = subscribeToHub({ hub, connection: { id: createConnectionId(), userId, transport: 'sse', openedAt: now() }, lastEventId, sink: this });
    this.#subscription = subscription;
    return ready;
  }

  /** Sends the head on the first call; false once the channel ended or the client left. */
  open(): boolean {
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
  deliver(message: PushMessage, replayed: boolean): boolean {
    if (!this.open()) return false;
    const frame = framePush(message);
    if (this.#queue === undefined && !socketBlocked(this.#response)) {
      writeSharedFrame(this.#response, frame);
      return true;
    }
    this.#enqueue(frame.text, !replayed);
    if (this.#queuedLiveBytes > this.#streams.options.maxBufferedBytes) {
      this.#tooSlow();
      return false;
    }
    return true;
  }

  /** The shared heartbeat: not while the socket is full, nor ahead of queued events. */
  beat(): void {
    const response = this.#response;
    if (this.#queue !== undefined || response.destroyed || socketBlocked(response)) return;
    response.write(heartbeat);
  }

  /** The shared age timer: the stream reached its maximum age. */
  expire(): void {
    this.closeWith({ reason: 'max_connection_age', reconnect: true, message: `The stream reached its maximum age (hub.maxConnectionAgeMs); reconnect with Last-Event-ID.` });
  }

  /** The hub ends the connection: after an admin's disconnect the client should not reconnect. */
  close(reason: HubCloseReason): void {
    this.closeWith({ reason: reason.code, reconnect: reason.code === 'shutting_down', message: reason.message });
  }

  /** Ends the stream with a `close` event, after everything already queued for it. */
  closeWith(data: CloseEventData): void {
    if (!this.open()) {
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
    this.#stopWaitingForDrain();
    this.#queue = undefined;
    this.#head = 0;
    this.#queuedLiveBytes = 0;
    const { timers, options } = this.#streams;
    timers.delete(this, this.#ageMs);
    const subscription = this.#subscription;
    subscription?.unsubscribe().catch((error: unknown) => options.logger.warn({ err: error, connectionId: subscription.id }, 'hub: unregistering a connection failed'));
  }

  #enqueue(text: string, live: boolean): void {
    const liveBytes = live ? Buffer.byteLength(text) : 0;
    if (this.#queue === undefined) {
      this.#queue = [];
      this.#waitForDrain();
    }
    this.#queue.push({ text, liveBytes });
    this.#queuedLiveBytes += liveBytes;
  }

  /** The socket's 'drain', not the response's: a shared frame is written to the socket itself. */
  #waitForDrain(): void {
    const emitter = this.#response.socket ?? this.#response;
    const listener = (): void => this.#flush();
    emitter.on('drain', listener);
    this.#drain = { emitter, listener };
  }

  #stopWaitingForDrain(): void {
    this.#drain?.emitter.off('drain', this.#drain.listener);
    this.#drain = undefined;
  }

  #flush(): void {
    const queue = this.#queue;
    const response = this.#response;
    if (this.#state !== 'open' || queue === undefined) return;
    response.cork();
    while (this.#head < queue.length && !socketBlocked(response)) {
      const item = queue[this.#head++];
      if (!item) break;
      this.#queuedLiveBytes -= item.liveBytes;
      response.write(item.text);
    }
    process.nextTick(() => response.uncork());
    if (this.#head === queue.length) {
      // All sent: an idle stream keeps no queue and no 'drain' listener.
      this.#queue = undefined;
      this.#head = 0;
      this.#stopWaitingForDrain();
    } else if (this.#head > 1024 && this.#head * 2 > queue.length) {
      // Drop the sent front now and then, so a long backlog does not keep its sent half alive.
      this.#queue = queue.slice(this.#head);
      this.#head = 0;
    }
  }

  #takeQueue(): string {
    let text = '';
    const queue = this.#queue ?? [];
    for (let index = this.#head; index < queue.length; index++) text += queue[index]?.text ?? '';
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
