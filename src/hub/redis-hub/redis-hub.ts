// The cluster hub: the Hub of one Sluice node among several sharing a Redis (docs/deployment.md,
// "What lives where"; docs/decisions/0009-redis-hub.md). Sockets stay in this process's
// connection registry, as in the memory hub; what moves to Redis is the push sequence (INCR on
// one key), the replay logs, every node's list of connections, and the fan-out: a push is
// published on one channel that every node's subscriber listens to (sharded pub/sub on a Redis
// Cluster, so that the channel's shard counts every listener: docs/decisions/0019-redis-cluster.md), each node delivers it to its
// own connections and replies with how many it reached.
//
// This file answers the Hub's calls and wires the parts: hub-channels.ts (the subscription),
// replies.ts (counting every node's replies), connection-list.ts (the lists in Redis),
// push-script.ts and replay.ts (the logs), keys.ts and wire.ts (what is stored and sent).
import { createNodePresence, type NodePresence } from '../../redis/node-presence.js';
import type { RedisConnections } from '../../redis/connection.js';
import type { Logger } from '../../observability/logger.js';
import { closeConnections, createConnectionRegistry, disconnectedReason, shuttingDownReason, type ConnectionRegistry } from '../connection-registry.js';
import {
  defaultHubRetention,
  isPushEventName,
  isPushId,
  type ConnectionCounts,
  type ConnectionInfo,
  type Hub,
  type HubConnection,
  type HubRetention,
  type PushMessage,
  type PushResult,
  type PushTarget,
} from '../hub.js';
import { NodeConnectionList } from './connection-list.js';
import { HubChannels } from './hub-channels.js';
import { hubKeys, type HubKeys } from './keys.js';
import { runPushScript } from './push-script.js';
import { ReplyCounter } from './replies.js';
import { replayFromRedis } from './replay.js';
import { disconnectEnvelope, hubUnavailable, type Envelope } from './wire.js';

export interface RedisHubOptions {
  /** This node's Redis connections (createRedisConnections); the hub never closes them. */
  readonly redis: RedisConnections;
  /** This node's id: unique in the cluster, short ASCII; what ConnectionInfo.node shows. */
  readonly nodeId: string;
  /** Milliseconds since the epoch: pushedAt, and the age cut on replay. */
  readonly now: () => number;
  /** What is kept for replay; each field defaults to {@link defaultHubRetention}'s. */
  readonly retention?: Partial<HubRetention>;
  /**
   * How long push() and disconnect() wait for the other nodes' replies (ms). Default 250. A node
   * that has not replied by then is counted as having reached no connection; the call never
   * waits longer.
   */
  readonly replyTimeoutMs?: number;
  /** See NodePresenceOptions.ttlMs. Default 15 000. */
  readonly presenceTtlMs?: number;
  /** See NodePresenceOptions.heartbeatIntervalMs. Default a third of the TTL. */
  readonly heartbeatIntervalMs?: number;
  readonly logger: Logger;
}

export interface RedisHub extends Hub {
  /** This node's heartbeat, which the hub started: readiness reads `presence.registered`. */
  readonly presence: NodePresence;
  /**
   * True while this node listens on the hub's channels and Redis is healthy: what push, replay
   * and the connection lists need. After an outage it turns true only once the subscription is
   * back, a moment after the connections are, so readiness reads it too.
   */
  readonly listening: boolean;
  /**
   * Resolves once this node listens on the hub's channels (rejects after `timeoutMs`, default
   * 5000). Until then, and whenever Redis is away, the shared calls reject with store_unavailable.
   */
  ready(timeoutMs?: number): Promise<void>;
  /**
   * Leaves the cluster (shutdown, after closeLocal): stops listening, stops the heartbeat and
   * deletes this node's presence and connection list. The Redis connections stay open.
   */
  close(): Promise<void>;
}

/**
 * Creates the hub of node `nodeId` in a cluster sharing `redis`, and starts its subscription and
 * heartbeat (no timer keeps the process alive). Behind the same {@link Hub} interface as the
 * memory hub, so the app picks one or the other by config.
 *
 * When Redis is unreachable, push, replay, connections, counts and disconnect reject with
 * SluiceError `store_unavailable` at once (or after the 1 s command timeout if Redis stops
 * answering mid-call), while register still registers locally (a connected client keeps its
 * channel open) and closeLocal still closes; this node's connection list in Redis is rewritten
 * when Redis is back.
 */
export function createRedisHub(options: RedisHubOptions): RedisHub {
  return new ClusterHub(options);
}

class ClusterHub implements RedisHub {
  readonly nodeId: string;
  readonly presence: NodePresence;
  readonly #redis: RedisConnections;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #retention: HubRetention;
  readonly #keys: HubKeys;
  readonly #registry: ConnectionRegistry;
  readonly #list: NodeConnectionList;
  readonly #replies: ReplyCounter;
  readonly #channels: HubChannels;
  readonly #stopWatchingHealth: () => void;
  #closed = false;

  constructor(options: RedisHubOptions) {
    const { redis, nodeId, logger } = options;
    this.nodeId = nodeId;
    this.#redis = redis;
    this.#now = options.now;
    this.#logger = logger;
    this.#retention = { ...defaultHubRetention, ...options.retention };
    this.#keys = hubKeys(redis.keyPrefix);
    this.#registry = createConnectionRegistry(nodeId);
    this.#replies = new ReplyCounter({ redis, keys: this.#keys, nodeId, replyTimeoutMs: options.replyTimeoutMs ?? 250, logger });
    this.presence = createNodePresence({
      redis,
      nodeId,
      ...(options.presenceTtlMs === undefined ? {} : { ttlMs: options.presenceTtlMs }),
      ...(options.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
      ownedKeys: [this.#keys.connections(nodeId)],
      // Called after a heartbeat's await, by which time #list is set.
      afterBeat: () => this.#list.rewriteIfStale(),
      logger,
    });
    this.#list = new NodeConnectionList({ command: redis.command, keys: this.#keys, nodeId, registry: this.#registry, presence: this.presence });
    this.#channels = new HubChannels(redis, this.#keys, nodeId, logger, {
      onEnvelope: (envelope) => {
        this.#onEnvelope(envelope).catch((error: unknown) => logger.warn({ err: error }, 'hub: handling a cluster message failed'));
      },
      onReply: (reply) => this.#replies.receive(reply),
    });
    this.#stopWatchingHealth = redis.onHealthChange(this.#onHealthChange);
    void this.#channels.subscribe();
  }

  ready(timeoutMs = 5000): Promise<void> {
    return this.#channels.ready(timeoutMs);
  }

  get listening(): boolean {
    return !this.#closed && this.#redis.healthy && this.#channels.subscribed;
  }

  async register(connection: HubConnection): Promise<void> {
    this.#registry.add(connection);
    // Redis away: registered here all the same (pushes from other nodes cannot reach us then
    // anyway); the list is rewritten when Redis is back.
    await this.#list.add(connection);
  }

  async unregister(connection: HubConnection): Promise<void> {
    if (this.#registry.remove(connection)) await this.#list.remove(connection.id);
  }

  async push(target: PushTarget, event: string, data: unknown): Promise<PushResult> {
    if (!isPushEventName(event)) throw new TypeError(`"${event}" cannot name a push: use 1 to 64 of A-Z a-z 0-9 . _ : - and not error or close.`);
    const json = JSON.stringify(data) as string | undefined;
    if (json === undefined) throw new TypeError('Push data must be a JSON value.');
    this.#requireRedis();
    const normalised: PushTarget = 'all' in target ? { all: true } : { users: [...new Set(target.users)] };
    const { result: id, total } = await this.#replies.gather(async (request) => {
      const { id: pushed, receivers } = await runPushScript(this.#redis, this.#keys, {
        origin: this.nodeId,
        request,
        target: normalised,
        event,
        json,
        pushedAt: this.#now(),
        retention: this.#retention,
      });
      return { result: pushed, receivers };
    });
    return { id, connections: total };
  }

  async replay(userId: string, lastEventId: string): Promise<PushMessage[]> {
    if (!isPushId(lastEventId)) throw new TypeError('lastEventId must be decimal digits (a push id).');
    this.#requireRedis();
    try {
      return await replayFromRedis({ command: this.#redis.command, keys: this.#keys, retention: this.#retention, now: this.#now }, userId, Number(lastEventId));
    } catch (error) {
      throw hubUnavailable(error);
    }
  }

  async connections(userId?: string): Promise<ConnectionInfo[]> {
    this.#requireRedis();
    return this.#list.cluster(userId);
  }

  async counts(): Promise<ConnectionCounts> {
    const all = await this.connections();
    const byUser = new Map<string, number>();
    for (const info of all) byUser.set(info.userId, (byUser.get(info.userId) ?? 0) + 1);
    // fromEntries defines own properties, so even a user named "__proto__" is counted.
    return { total: all.length, byUser: Object.fromEntries(byUser) };
  }

  async disconnect(userId: string): Promise<number> {
    this.#requireRedis();
    const { total } = await this.#replies.gather(async (request) => {
      const receivers = await this.#redis.publish(this.#keys.eventsChannel, disconnectEnvelope(this.nodeId, request, userId));
      return { result: undefined, receivers };
    });
    return total;
  }

  async closeLocal(): Promise<number> {
    const count = closeConnections(this.#registry.takeAll(), shuttingDownReason);
    await this.#list.clear();
    return count;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopWatchingHealth();
    this.#replies.finishAll();
    await this.#channels.close();
    await this.presence.stop();
  }

  #requireRedis(): void {
    if (!this.listening) throw hubUnavailable();
  }

  /** Delivers a push to this node's connections, or closes a user's, and replies with the count. */
  async #onEnvelope(envelope: Envelope): Promise<void> {
    if (envelope.kind === 'push') {
      this.#replies.answer(envelope.origin, envelope.request, this.#registry.deliver(envelope.target, envelope.message));
      return;
    }
    const taken = this.#registry.takeUser(envelope.userId);
    const count = closeConnections(taken, disconnectedReason);
    // Removed from Redis before replying, so the caller's next list no longer shows them.
    if (taken.length > 0) await this.#list.remove(...taken.map((connection) => connection.id));
    this.#replies.answer(envelope.origin, envelope.request, count);
  }

  readonly #onHealthChange = (healthy: boolean): void => {
    if (!healthy) {
      this.#channels.lost();
      return;
    }
    // Back after an outage: listen again, and rewrite our list (it may have expired meanwhile,
    // or Redis may have lost its data).
    void this.#channels.subscribe();
    this.#list.rewrite().catch(() => {
      // Still stale: the next heartbeat tries again.
    });
  };
}
