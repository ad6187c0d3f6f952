// This node's ears in the cluster hub: the subscription to the events channel every node listens
// on and to this node's reply channel, the parsing of what arrives on them, and whether the
// subscription is up, which the shared calls require (until it is, they reject with
// store_unavailable rather than miss replies).
import type { Logger } from '../../observability/logger.js';
import type { RedisConnections } from '../../redis/connection.js';
import type { HubKeys } from './keys.js';
import { envelopeSchema, parseJson, replySchema, type Envelope, type Reply } from './wire.js';

export interface HubChannelHandlers {
  /** A push to deliver or a disconnect to carry out, from any node (this one included). */
  onEnvelope(envelope: Envelope): void;
  /** Another node's reply to one of this node's requests. */
  onReply(reply: Reply): void;
}

export class HubChannels {
  readonly #redis: RedisConnections;
  readonly #eventsChannel: string;
  readonly #replyChannel: string;
  readonly #logger: Logger;
  readonly #handlers: HubChannelHandlers;
  readonly #subscribedListeners = new Set<() => void>();
  readonly #stopListening: () => void;
  #subscribed = false;
  #closed = false;

  /** Starts listening for messages; `subscribe()` then subscribes. */
  constructor(redis: RedisConnections, keys: HubKeys, nodeId: string, logger: Logger, handlers: HubChannelHandlers) {
    this.#redis = redis;
    this.#eventsChannel = keys.eventsChannel;
    this.#replyChannel = keys.replyChannel(nodeId);
    this.#logger = logger;
    this.#handlers = handlers;
    this.#stopListening = redis.onMessage(this.#onMessage);
  }

  /** True while this node listens on both channels. */
  get subscribed(): boolean {
    return this.#subscribed;
  }

  /** Subscribes to both channels; never rejects (Redis away: the next health change tries again). */
  async subscribe(): Promise<void> {
    try {
      await this.#redis.subscribe(this.#eventsChannel, this.#replyChannel);
    } catch {
      // Redis is away; subscribing again when it is back.
      return;
    }
    if (this.#closed) return;
    this.#subscribed = true;
    for (const listener of [...this.#subscribedListeners]) listener();
  }

  /** Redis went away: the subscription is gone with the connection. */
  lost(): void {
    this.#subscribed = false;
  }

  /** Resolves once subscribed while Redis is healthy; rejects after `timeoutMs`. */
  ready(timeoutMs: number): Promise<void> {
    if (this.#subscribed && this.#redis.healthy) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#subscribedListeners.delete(onSubscribed);
        reject(new Error(`hub: not listening on Redis after ${timeoutMs.toString()} ms`));
      }, timeoutMs);
      const onSubscribed = (): void => {
        clearTimeout(timer);
        this.#subscribedListeners.delete(onSubscribed);
        resolve();
      };
      this.#subscribedListeners.add(onSubscribed);
    });
  }

  /** Stops listening and unsubscribes; never rejects. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#subscribed = false;
    this.#stopListening();
    await this.#redis.unsubscribe(this.#eventsChannel, this.#replyChannel).catch(() => undefined);
  }

  readonly #onMessage = (channel: string, payload: string): void => {
    // The subscriber connection may be shared with other parts of the app: only our channels.
    if (channel !== this.#eventsChannel && channel !== this.#replyChannel) return;
    const parsed = parseJson(payload);
    if (channel === this.#replyChannel) {
      const reply = replySchema.safeParse(parsed);
      if (reply.success) this.#handlers.onReply(reply.data);
      else this.#logger.warn({ channel }, 'hub: ignored a malformed reply');
      return;
    }
    const envelope = envelopeSchema.safeParse(parsed);
    if (envelope.success) this.#handlers.onEnvelope(envelope.data);
    else this.#logger.warn({ channel }, 'hub: ignored a malformed message (another Sluice version?)');
  };
}
