// Which Sluice nodes of a cluster are alive: each node refreshes a heartbeat in Redis, and anyone
// can read the set of nodes whose heartbeat has not expired. The hub uses it to know whose
// connection lists to merge; readiness can use it to say whether this node is registered.
// Liveness is judged by Redis's clock (TIME inside the scripts), so nodes whose clocks disagree
// still agree on who is alive.
import type { Logger } from '../observability/logger.js';
import type { RedisConnections } from './connection.js';
import { slotKey } from './keys.js';
import { defineLuaScript, runLuaScript } from './lua-script.js';

export interface NodePresenceOptions {
  readonly redis: RedisConnections;
  /** This node's id; short ASCII, unique in the cluster. */
  readonly nodeId: string;
  /**
   * A node whose last heartbeat is older than this (ms) counts as gone. Default 15 000: a node
   * killed without cleanup drops out of lists and counts within this.
   */
  readonly ttlMs?: number;
  /** How often the heartbeat is refreshed (ms). Default a third of `ttlMs`, so two may be lost. */
  readonly heartbeatIntervalMs?: number;
  /**
   * Keys that live exactly as long as this node's presence (e.g. the hub's list of this node's
   * connections): each heartbeat sets their TTL to `ttlMs`, and a graceful stop deletes them.
   * Full key names made with {@link presenceOwnedKey}, so that they share the heartbeat's slot
   * on a Redis Cluster.
   */
  readonly ownedKeys?: readonly string[];
  /** Called after each heartbeat that reached Redis (errors it throws are logged). */
  readonly afterBeat?: () => Promise<void>;
  readonly logger: Logger;
}

export interface NodePresence {
  readonly nodeId: string;
  /** See {@link NodePresenceOptions.ttlMs}. */
  readonly ttlMs: number;
  /**
   * True while this node's last heartbeat reached Redis less than `ttlMs` ago, i.e. while the
   * other nodes see it (what readiness reports). False before the first heartbeat and after stop.
   */
  readonly registered: boolean;
  /**
   * The ids of the nodes whose heartbeat has not expired, sorted. Rejects when Redis is
   * unreachable (after at most the connection's command timeout).
   */
  liveNodes(): Promise<string[]>;
  /** Refreshes the heartbeat now; rejects when Redis is unreachable. */
  beat(): Promise<void>;
  /**
   * Stops the heartbeat. With `deregister` (the default) the node also leaves the live set at once
   * and its owned keys are deleted (best effort); without it the node just stops refreshing and
   * vanishes when its TTL runs out, as after a crash.
   */
  stop(options?: { readonly deregister?: boolean }): Promise<void>;
}

// Every presence key carries the hash tag `{nodes}`: the heartbeat script touches the live set, the
// node's key and its owned keys at once, so on a Redis Cluster they must share one slot.
const presenceTag = 'nodes';

/** The sorted set of live nodes (member: node id, score: expiry in Redis's ms) for a key prefix. */
export function nodesKey(keyPrefix: string): string {
  return slotKey(keyPrefix, presenceTag);
}

/** The per-node heartbeat key (`SET … PX ttl`), for a key prefix. */
export function nodeKey(keyPrefix: string, nodeId: string): string {
  return slotKey(keyPrefix, presenceTag, `:node:${nodeId}`);
}

/** A key that lives as long as a node's presence (see {@link NodePresenceOptions.ownedKeys}): `name` within the presence's slot. */
export function presenceOwnedKey(keyPrefix: string, name: string): string {
  return slotKey(keyPrefix, presenceTag, `:${name}`);
}

// KEYS[1] live set, KEYS[2] this node's key, KEYS[3..] owned keys; ARGV[1] node id, ARGV[2] TTL ms.
// Scored by expiry, so reading the live set is one range query, not a SCAN of the keyspace; the
// expired are dropped on every heartbeat, and the set itself expires when no node is left. A node
// is live up to and including its expiry's millisecond, as Redis keeps a key until its expiry has
// passed: a node is never listed as gone while the keys it owns (set to the same TTL) still exist.
const heartbeatScript = defineLuaScript(`
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], nowMs + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. nowMs)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[2], nowMs, 'PX', ttl)
for index = 3, #KEYS do redis.call('PEXPIRE', KEYS[index], ttl) end
return nowMs
`);

const liveNodesScript = defineLuaScript(`
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], nowMs, '+inf')
`);

/**
 * Starts this node's heartbeat (one at once, then every `heartbeatIntervalMs`, and again as soon
 * as Redis comes back after an outage). The timer does not keep the process alive. A heartbeat
 * that fails is retried at the next tick; the outage itself is logged by the Redis connections.
 */
export function createNodePresence(options: NodePresenceOptions): NodePresence {
  const { redis, nodeId, logger } = options;
  const ttlMs = options.ttlMs ?? 15_000;
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? Math.floor(ttlMs / 3);
  if (!(ttlMs > 0) || !(heartbeatIntervalMs > 0) || heartbeatIntervalMs >= ttlMs) {
    throw new RangeError(`node presence: heartbeatIntervalMs (${heartbeatIntervalMs.toString()}) must be positive and below ttlMs (${ttlMs.toString()}).`);
  }
  const ownedKeys = options.ownedKeys ?? [];
  const liveSet = nodesKey(redis.keyPrefix);
  const ownKey = nodeKey(redis.keyPrefix, nodeId);
  // performance.now() (monotonic), not the wall clock: only "how long since the last beat" matters.
  let lastBeatAt = -Infinity;
  let stopped = false;

  async function beat(): Promise<void> {
    await runLuaScript(redis.command, heartbeatScript, [liveSet, ownKey, ...ownedKeys], [nodeId, ttlMs.toString()]);
    lastBeatAt = performance.now();
    if (options.afterBeat) await options.afterBeat().catch((error: unknown) => logger.warn({ err: error, nodeId }, 'node presence: after-heartbeat work failed'));
  }

  function tick(): void {
    if (stopped) return;
    beat().catch(() => {
      // Redis is away: the connections log the outage once; the next tick tries again.
    });
  }

  const timer = setInterval(tick, heartbeatIntervalMs);
  timer.unref();
  const stopListening = redis.onHealthChange((healthy) => {
    if (healthy) tick();
  });
  tick();

  return {
    nodeId,
    ttlMs,
    get registered() {
      return !stopped && performance.now() - lastBeatAt < ttlMs;
    },
    async liveNodes() {
      const result = await runLuaScript(redis.command, liveNodesScript, [liveSet], []);
      if (!Array.isArray(result)) throw new Error('node presence: unexpected reply to the live-nodes script.');
      return result.map(String).sort();
    },
    beat,
    async stop(stopOptions = {}) {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      stopListening();
      if (stopOptions.deregister === false) return;
      await redis.command
        .multi()
        .zrem(liveSet, nodeId)
        .del(ownKey, ...ownedKeys)
        .exec()
        .catch((error: unknown) => logger.warn({ err: error, nodeId }, 'node presence: could not deregister; the node vanishes when its TTL runs out'));
    },
  };
}
