// The follower side's subscriptions: which views on this node follow which generation running on
// another node, by the generation's `grew` channel. One subscription per generation, however many
// views follow it; each growth notice is handed to all of them.
import type { Logger } from '../../observability/logger.js';
import type { RedisConnections } from '../../redis/connection.js';
import type { GenerationKeys } from './keys.js';
import { subscribeQuietly } from './wire.js';

/** What the subscriptions need of a view following a remote generation. */
export interface FollowingView {
  /** The generation followed. */
  readonly id: string;
  /** The producer published the log's new length (NaN when the message was not a number). */
  onGrew(length: number): void;
  /** Re-reads the log from Redis soon (the subscription may have missed something). */
  refreshSoon(): void;
  /** Stops the view's timers without telling anyone (shutdown). */
  stop(): void;
}

export class RemoteFollowers {
  /** Views following a remote generation, by its `grew` channel. */
  readonly #views = new Map<string, Set<FollowingView>>();
  readonly #redis: RedisConnections;
  readonly #keys: GenerationKeys;
  readonly #logger: Logger;

  constructor(redis: RedisConnections, keys: GenerationKeys, logger: Logger) {
    this.#redis = redis;
    this.#keys = keys;
    this.#logger = logger;
  }

  /** Starts delivering the generation's growth to `view`, which then reads what it missed. */
  add(view: FollowingView): void {
    const channel = this.#keys.grew(view.id);
    let views = this.#views.get(channel);
    if (!views) {
      views = new Set();
      this.#views.set(channel, views);
      // Subscribed first, read after: nothing written in between is missed.
      void subscribeQuietly(this.#redis, channel, this.#logger).then(() => view.refreshSoon());
    } else {
      view.refreshSoon();
    }
    views.add(view);
  }

  /** Stops delivering to `view`; the last view of a generation unsubscribes from it. */
  remove(view: FollowingView): void {
    const channel = this.#keys.grew(view.id);
    const views = this.#views.get(channel);
    views?.delete(view);
    if (views?.size === 0) {
      this.#views.delete(channel);
      this.#redis.unsubscribe(channel).catch(() => undefined);
    }
  }

  /** Hands a message of `channel` to the views following it; false when the channel is none of theirs. */
  deliver(channel: string, message: string): boolean {
    const views = this.#views.get(channel);
    if (!views) return false;
    const length = Number(message);
    for (const view of views) view.onGrew(length);
    return true;
  }

  /** Subscribes again after an outage, and has every view read what it missed meanwhile. */
  resubscribe(): void {
    for (const [channel, views] of this.#views) {
      void subscribeQuietly(this.#redis, channel, this.#logger).then(() => {
        for (const view of views) view.refreshSoon();
      });
    }
  }

  /** Stops every view's timers and forgets them, without unsubscribing (shutdown). */
  stopAll(): void {
    for (const views of this.#views.values()) for (const view of views) view.stop();
    this.#views.clear();
  }
}
