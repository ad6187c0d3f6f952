// One client connection's subscription to the hub, whatever carries it (SSE, WebSocket): register
// the connection, replay what the client missed after its Last-Event-ID, then go live, with no
// push lost or repeated in between (decision 0008), and leave the hub when the client goes.
//
// The order matters. The connection is registered *before* the replay is read, so a push that
// lands between the two is held rather than lost; the held pushes are handed over after the
// replay, minus those it already holds (by id). With the cluster hub, where appending to the log
// and publishing are separate steps, a push can be in both: that is why the duplicates are dropped
// by id and not by position.
import type { HubCloseReason, HubConnection, HubTransport, Hub, PushMessage } from './hub.js';

/** Where a subscription hands its messages: the transport's side of one client connection. */
export interface HubSink {
  /**
   * Sends one message to the client, or queues it behind what is unsent. Messages come in id
   * order: first the replay (`replayed` true: bounded by retention, so a transport need not count
   * it against a slow-client limit), then live ones. Same rules as {@link HubConnection.deliver}:
   * never throws, never blocks; false when the client could not take it.
   */
  deliver(message: PushMessage, replayed: boolean): boolean;
  /**
   * The hub ends the connection (an admin's disconnect, or this node shutting down). Never called
   * before the replay and the held pushes were delivered: the client gets them first. Must not throw.
   */
  close(reason: HubCloseReason): void;
}

export interface HubSubscriptionOptions {
  readonly hub: Hub;
  /** The connection as the hub lists it: its id (unique on every node), user, transport and start. */
  readonly connection: Pick<HubConnection, 'id' | 'userId' | 'transport' | 'openedAt'>;
  /** The last push id the client saw (decimal digits, see isPushId); undefined replays nothing. */
  readonly lastEventId: string | undefined;
  readonly sink: HubSink;
  /**
   * For a transport that can no longer fail the request (a WebSocket after its upgrade): a failed
   * registration or replay is reported here and the subscription goes on without it (no live
   * pushes, or no replay). Without it, `ready` rejects instead and the connection leaves the hub.
   */
  readonly onError?: (error: unknown, step: 'register' | 'replay') => void;
}

export interface HubSubscription {
  /** The connection's id, as the hub lists it. */
  readonly id: string;
  /**
   * Stops delivering and leaves the hub; idempotent. Safe while `ready` is pending: the connection
   * then leaves as soon as its registration completes. Rejects when the hub fails to remove it.
   */
  unsubscribe(): Promise<void>;
}

export interface OpeningSubscription {
  readonly subscription: HubSubscription;
  /**
   * Settles once the replay and the pushes held meanwhile are delivered and pushes flow live.
   * Rejects (nothing delivered, the connection already leaving the hub) when registering or
   * replaying failed and no `onError` was given. Apart from the subscription, which does not keep
   * it: a transport awaits it once, while the subscription lives as long as the connection
   * (decision 0029).
   */
  readonly ready: Promise<void>;
}

/** Registers `options.connection` with the hub and starts the replay; see {@link OpeningSubscription}. */
export function subscribeToHub(options: HubSubscriptionOptions): OpeningSubscription {
  const subscription = new SinkSubscription(options);
  return { subscription, ready: subscription.subscribe(options.lastEventId, options.onError) };
}

/** What a subscription needs only while it opens, or once it leaves. */
interface Passing {
  /** Pushes that arrived while opening: delivered after the replay, minus those it holds. */
  held?: PushMessage[] | undefined;
  /** A close the hub asked for while opening: passed on after what was held. */
  heldClose?: HubCloseReason | undefined;
  /** Set while the connection registers: settles when register() has. */
  registering?: Promise<void> | undefined;
  /** Once unsubscribed: the leaving, which every later unsubscribe() returns. */
  left?: Promise<void>;
}

/**
 * One connection's subscription, which is also what the hub holds (it is the
 * {@link HubConnection}): an idle connection keeps no closures, options or promises of its own
 * (decision 0029). A transport with thousands of idle connections (the SSE route) extends it, so
 * that a connection is one object and not two; others hand subscribeToHub a {@link HubSink}.
 */
export abstract class HubSubscriber implements HubSubscription, HubConnection {
  readonly id: string;
  readonly userId: string;
  abstract readonly transport: HubTransport;
  abstract readonly openedAt: number;
  readonly #hub: Hub;
  #state: 'opening' | 'live' | 'closed' = 'opening';
  /** What only opening and leaving need; a live connection keeps none of it (decision 0036). */
  #passing: Passing | undefined;

  constructor(hub: Hub, id: string, userId: string) {
    this.#hub = hub;
    this.id = id;
    this.userId = userId;
  }

  /** The transport's side: {@link HubSink.deliver}. */
  protected abstract deliverToClient(message: PushMessage, replayed: boolean): boolean;
  /** The transport's side: {@link HubSink.close}. */
  protected abstract closeClient(reason: HubCloseReason): void;

  unsubscribe(): Promise<void> {
    this.#state = 'closed';
    const passing = (this.#passing ??= {});
    passing.held = undefined;
    passing.heldClose = undefined;
    // While registering there is nothing to remove yet: it is removed once registered.
    // (The hub's unregister does nothing for a connection whose registration failed.)
    passing.left ??= passing.registering
      ? passing.registering.then(
          () => this.#hub.unregister(this),
          () => undefined,
        )
      : this.#hub.unregister(this);
    return passing.left;
  }

  /** The hub delivers a push (the {@link HubConnection} side). */
  deliver(message: PushMessage): boolean {
    if (this.#state === 'closed') return false;
    if (this.#state === 'opening') {
      ((this.#passing ??= {}).held ??= []).push(message);
      return true;
    }
    return this.deliverToClient(message, false);
  }

  /** The hub ends the connection (the {@link HubConnection} side). */
  close(reason: HubCloseReason): void {
    if (this.#state === 'opening') (this.#passing ??= {}).heldClose = reason;
    else if (this.#state === 'live') this.closeClient(reason);
  }

  /** A method, not an inline test: unsubscribe() may change the state across an await. */
  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  /**
   * Registers, replays what followed `lastEventId` and goes live: {@link OpeningSubscription.ready}.
   * Call it once. `onError`: see {@link HubSubscriptionOptions.onError}.
   */
  async subscribe(lastEventId: string | undefined, onError?: HubSubscriptionOptions['onError']): Promise<void> {
    const passing = (this.#passing ??= {});
    passing.registering = this.#register(onError);
    try {
      await passing.registering;
    } finally {
      passing.registering = undefined;
    }
    // The client left while the connection registered: unsubscribe() removes it.
    if (this.#isClosed()) return;
    const replayed = await this.#replay(lastEventId, onError);
    if (this.#isClosed()) return;
    this.#goLive(replayed);
  }

  /** Registers the connection; a failure that `onError` takes leaves it unregistered, and goes on. */
  async #register(onError: HubSubscriptionOptions['onError']): Promise<void> {
    try {
      await this.#hub.register(this);
    } catch (error) {
      if (!onError) {
        this.#state = 'closed';
        throw error;
      }
      onError(error, 'register');
    }
  }

  async #replay(lastEventId: string | undefined, onError: HubSubscriptionOptions['onError']): Promise<PushMessage[]> {
    if (lastEventId === undefined) return [];
    try {
      return await this.#hub.replay(this.userId, lastEventId);
    } catch (error) {
      if (!onError) {
        // Whoever calls unsubscribe() gets this same promise, and with it a failure to leave.
        this.unsubscribe().catch(() => undefined);
        throw error;
      }
      onError(error, 'replay');
      return [];
    }
  }

  /** Hands over the replay, then what was held, then opens the tap; all in one synchronous step. */
  #goLive(replayed: readonly PushMessage[]): void {
    const passing = this.#passing;
    this.#passing = undefined;
    const held = passing?.held ?? [];
    this.#state = 'live';
    const replayedIds = held.length > 0 ? new Set(replayed.map((message) => message.id)) : undefined;
    for (const message of replayed) this.deliverToClient(message, true);
    for (const message of held) if (!replayedIds?.has(message.id)) this.deliverToClient(message, false);
    const close = passing?.heldClose;
    if (close) this.closeClient(close);
  }
}

/** A subscription that hands what it gets to a separate {@link HubSink}. */
class SinkSubscription extends HubSubscriber {
  readonly transport: HubTransport;
  readonly openedAt: number;
  readonly #sink: HubSink;

  constructor({ hub, connection, sink }: HubSubscriptionOptions) {
    super(hub, connection.id, connection.userId);
    this.transport = connection.transport;
    this.openedAt = connection.openedAt;
    this.#sink = sink;
  }

  protected deliverToClient(message: PushMessage, replayed: boolean): boolean {
    return this.#sink.deliver(message, replayed);
  }

  protected closeClient(reason: HubCloseReason): void {
    this.#sink.close(reason);
  }
}
