// The generation registry of cluster mode: every generation started on this node is mirrored to
// Redis (its info, and its log as a list, one round trip per batch of events), so a
// client can re-attach on any node with Last-Event-ID and get exactly what it missed, then live
// events; cancellation crosses nodes through a per-node control channel; and a node presence key
// lets a reader tell "still running" from "its node died", so a follower never hangs: it gets
// every event that reached Redis, then `generation_interrupted`. Nothing here may slow down or
// break a stream served from the node that produces it: Redis failures only cost the mirror.
//
// This file wires the parts and answers the registry's calls. The producer side is
// mirror-writer.ts (the copy to Redis) and follower-leases.ts (remote followers keeping a
// generation alive); the follower side is remote-generation-view.ts and remote-followers.ts;
// keys.ts, append-script.ts, log-format.ts and wire.ts hold what is stored and sent.
import { createNodePresence, type NodePresence } from '../../redis/node-presence.js';
import { SluiceError } from '../../errors/sluice-error.js';
import { isErrorCode } from '../../errors/table.js';
import type { Generation } from '../generation.js';
import type { FoundGeneration, GenerationInfo, GenerationRegistry } from '../generation-registry.js';
import { FollowerLeases } from './follower-leases.js';
import { generationKeys, type GenerationKeys } from './keys.js';
import { formatOfMeta, LogFormatGate } from './log-format.js';
import { MirrorWriter } from './mirror-writer.js';
import { resolveRegistryOptions, type RedisGenerationRegistryOptions, type RegistrySettings } from './options.js';
import { RemoteFollowers } from './remote-followers.js';
import { RemoteGenerationView, storeUnavailable, type RemoteViewContext } from './remote-generation-view.js';
import { parseControl, parseInfo, publishControl, subscribeQuietly } from './wire.js';

export type { RedisGenerationRegistryOptions } from './options.js';

/** A GenerationRegistry backed by Redis, with the shutdown the app calls before closing Redis. */
export interface RedisGenerationRegistry extends GenerationRegistry {
  /**
   * Stops the timers and subscriptions, waits (up to 2 s) for pending mirror writes, and stops
   * the presence if the registry started it. Local generations are not cancelled (the app does
   * that first, so their last events reach Redis).
   */
  close(): Promise<void>;
}

/**
 * Creates the registry of node `options.nodeId` and starts its timers (none keeps the process
 * alive), its control-channel subscription and, unless one is given, its presence. Throws when an
 * option cannot work.
 */
export function createRedisGenerationRegistry(options: RedisGenerationRegistryOptions): RedisGenerationRegistry {
  return new ClusterGenerationRegistry(resolveRegistryOptions(options));
}

interface LocalGeneration {
  readonly info: GenerationInfo;
  readonly generation: Generation;
}

class ClusterGenerationRegistry implements RedisGenerationRegistry {
  readonly #settings: RegistrySettings;
  readonly #keys: GenerationKeys;
  readonly #controlChannel: string;
  readonly #presence: NodePresence;
  /** Generations started on this node, until retentionMs after they finished. */
  readonly #locals = new Map<string, LocalGeneration>();
  readonly #mirrors: MirrorWriter;
  /** Whether every live node reads the compact log yet (log-format.ts). */
  readonly #logFormat: LogFormatGate;
  readonly #leases: FollowerLeases;
  readonly #followers: RemoteFollowers;
  readonly #viewContext: RemoteViewContext;
  readonly #stopHealthWatch: () => void;
  readonly #stopListening: () => void;
  #closed = false;
  #viewSerial = 0;

  constructor(settings: RegistrySettings) {
    const { redis, nodeId, logger } = settings;
    this.#settings = settings;
    this.#presence = settings.presence ?? createNodePresence({ redis, nodeId, logger, ttlMs: settings.presenceTtlMs });
    this.#keys = generationKeys(redis.keyPrefix);
    this.#controlChannel = this.#keys.control(nodeId);
    this.#logFormat = new LogFormatGate({ redis, nodeId, logger, ttlMs: settings.presenceTtlMs, intervalMs: settings.keyRefreshMs });
    this.#mirrors = new MirrorWriter({ ...settings, keys: this.#keys, logFormat: () => this.#logFormat.format });
    this.#leases = new FollowerLeases(settings.now, settings.followCheckMs);
    this.#followers = new RemoteFollowers(redis, this.#keys, logger);
    this.#viewContext = { ...settings, keys: this.#keys, followers: this.#followers };
    this.#stopListening = redis.onMessage(this.#onMessage);
    void subscribeQuietly(redis, this.#controlChannel, logger);
    this.#stopHealthWatch = redis.onHealthChange(this.#onHealthChange);
  }

  track(generation: Generation, info: GenerationInfo): void {
    this.#locals.set(info.id, { info, generation });
    generation.packWhenFinished();
    this.#mirrors.add(generation, info);
    void generation.done.then(() => {
      const timer = setTimeout(() => this.#locals.delete(info.id), this.#settings.retentionMs);
      // A retained log must not keep the process alive at shutdown.
      timer.unref();
    });
  }

  async find(id: string): Promise<FoundGeneration | undefined> {
    const local = this.#locals.get(id);
    if (local) return local;
    const { redis, nodeId } = this.#settings;
    if (!redis.healthy) throw storeUnavailable();
    let meta: Record<string, string>;
    try {
      meta = await redis.command.hgetall(this.#keys.meta(id));
    } catch (error) {
      throw storeUnavailable(error);
    }
    if (meta['info'] === undefined || meta['node'] === undefined) return undefined;
    const info = parseInfo(meta['info']);
    const view = new RemoteGenerationView(id, meta['node'], formatOfMeta(meta), `${nodeId}#${(this.#viewSerial++).toString()}`, this.#viewContext);
    await view.open();
    return { info, generation: view };
  }

  async cancel(id: string, reason: SluiceError): Promise<boolean> {
    const local = this.#locals.get(id);
    if (local) {
      if (local.generation.finished) return false;
      local.generation.cancel(reason);
      return true;
    }
    const { redis, nodeId } = this.#settings;
    if (!redis.healthy) throw storeUnavailable();
    try {
      const [node, finished] = await redis.command.hmget(this.#keys.meta(id), 'node', 'finished');
      if (!node || finished === '1' || node === nodeId) return false;
      const receivers = await publishControl(redis, this.#keys, node, { type: 'cancel', id, code: reason.code, message: reason.message });
      // Nobody listens on a dead node's channel: that generation is not running any more.
      return receivers > 0;
    } catch (error) {
      throw storeUnavailable(error);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    const { redis } = this.#settings;
    this.#stopHealthWatch();
    this.#logFormat.stop();
    this.#followers.stopAll();
    this.#leases.close();
    // Last writes first (a cancelled generation's error event, say), then nothing more is sent.
    await this.#mirrors.close();
    this.#closed = true;
    this.#stopListening();
    await Promise.allSettled([redis.unsubscribe(this.#controlChannel), this.#settings.presence ? Promise.resolve() : this.#presence.stop()]);
  }

  /** Pub/sub: control messages for this node, growth of the generations followed from here. */
  readonly #onMessage = (channel: string, message: string): void => {
    if (channel === this.#controlChannel) this.#onControl(message);
    else this.#followers.deliver(channel, message);
  };

  /** A cancel, or a remote follower's lease, for a generation of this node. */
  #onControl(raw: string): void {
    const message = parseControl(raw);
    if (!message) {
      this.#settings.logger.warn({ channel: this.#controlChannel }, 'redis generation registry: ignored a malformed control message');
      return;
    }
    const local = this.#locals.get(message.id);
    if (!local) return;
    const { generation } = local;
    switch (message.type) {
      case 'cancel':
        generation.cancel(new SluiceError(isErrorCode(message.code) ? message.code : 'cancelled', { message: message.message }));
        return;
      case 'attach':
        this.#leases.attach(message.id, message.viewer, generation);
        return;
      case 'detach':
        this.#leases.detach(message.id, message.viewer);
    }
  }

  /** Back after an outage: listen again, write what is pending, and have followers catch up. */
  readonly #onHealthChange = (healthy: boolean): void => {
    if (!healthy || this.#closed) return;
    void subscribeQuietly(this.#settings.redis, this.#controlChannel, this.#settings.logger);
    this.#mirrors.flushAll();
    this.#followers.resubscribe();
  };
}
