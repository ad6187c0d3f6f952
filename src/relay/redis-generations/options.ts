// The options of the Redis generation registry, and the settings they resolve to: defaults
// applied and every value checked once, at construction, so a bad value fails at start instead
// of as a silent hang later.
import type { Logger } from '../../observability/logger.js';
import type { RedisConnections } from '../../redis/connection.js';
import type { NodePresence } from '../../redis/node-presence.js';

export interface RedisGenerationRegistryOptions {
  /** The node's Redis connections (commands and subscriptions); not closed by the registry. */
  redis: RedisConnections;
  /** This node's id, unique in the cluster (it names the presence key and the control channel). */
  nodeId: string;
  /** How long a finished generation stays attachable, in ms (the TTL of its keys). */
  retentionMs: number;
  logger: Logger;
  now: () => number;
  /**
   * Extra time, in ms, to gather events before writing a batch (`cluster.logFlushMs`, 50 by
   * default in the config). The first write (the info) goes with the log's first events, or this
   * long after the start when none came; the last (the terminal event) is not delayed (decision
   * 0039). 0: the info at once, then one write per turn of the event loop in which the log grew
   * (while a write is in flight, the next batch gathers everything that arrives meanwhile, so a
   * fast stream costs far fewer writes than events, but a stream whose upstream sends a token per
   * read costs one write per token).
   */
  flushIntervalMs?: number;
  /**
   * This node's presence (src/redis/node-presence.ts), shared with the hub. Absent, the
   * registry starts its own with `presenceTtlMs` and stops it on close. Followers on other nodes
   * read its key to tell a running generation from one whose node died.
   */
  presence?: NodePresence;
  /** TTL of the presence the registry starts itself, in ms: how long after a crash followers notice. Default 15000. */
  presenceTtlMs?: number;
  /** How often the TTL of running generations' keys is refreshed, in ms. Default a third of the presence TTL. */
  keyRefreshMs?: number;
  /**
   * How often a follower of a generation running on another node re-reads its log and checks
   * that node's presence, in ms (pub/sub does the fast path; this catches lost messages and dead
   * nodes). Default 1500.
   */
  followCheckMs?: number;
}

/** The options with their defaults, checked. */
export interface RegistrySettings {
  readonly redis: RedisConnections;
  readonly nodeId: string;
  readonly retentionMs: number;
  readonly logger: Logger;
  readonly now: () => number;
  readonly flushIntervalMs: number;
  readonly followCheckMs: number;
  /** The given presence; absent, the registry starts (and later stops) its own. */
  readonly presence: NodePresence | undefined;
  /** The presence's TTL, given or not. */
  readonly presenceTtlMs: number;
  readonly keyRefreshMs: number;
  /** The TTL of a running generation's keys: they outlive a crash of this node by retentionMs. */
  readonly runningTtlMs: number;
}

/** Applies the defaults; throws an Error naming the option when a value cannot work. */
export function resolveRegistryOptions(options: RedisGenerationRegistryOptions): RegistrySettings {
  const { redis, nodeId, retentionMs, logger, now, presence } = options;
  const flushIntervalMs = options.flushIntervalMs ?? 0;
  const followCheckMs = options.followCheckMs ?? 1500;
  if (nodeId === '' || /[\s{}]/.test(nodeId)) throw new Error(`redis generation registry: nodeId "${nodeId}" must be non-empty, without spaces or braces`);
  if (!(retentionMs > 0)) throw new Error('redis generation registry: retentionMs must be > 0');
  if (!(followCheckMs > 0) || !(flushIntervalMs >= 0)) throw new Error('redis generation registry: followCheckMs must be > 0 and flushIntervalMs >= 0');
  if (presence && presence.nodeId !== nodeId) throw new Error(`redis generation registry: the presence is node ${presence.nodeId}'s, not ${nodeId}'s`);
  const presenceTtlMs = presence?.ttlMs ?? options.presenceTtlMs ?? 15_000;
  const keyRefreshMs = options.keyRefreshMs ?? Math.floor(presenceTtlMs / 3);
  if (!(keyRefreshMs > 0 && keyRefreshMs < presenceTtlMs)) throw new Error('redis generation registry: keyRefreshMs must be > 0 and < the presence TTL');
  return { redis, nodeId, retentionMs, logger, now, flushIntervalMs, followCheckMs, presence, presenceTtlMs, keyRefreshMs, runningTtlMs: retentionMs + presenceTtlMs };
}
