// Cluster mode, chosen by config alone (cluster.redisUrl, or cluster.redisClusterNodes for a Redis Cluster): opens the Redis connections and builds
// the Redis implementations of every shared piece — hub, generation registry, tickets, limit
// state, upstream health — behind the interfaces the app already takes, plus readiness. Single-node mode never
// loads any of this.
import type { AppDependencies } from '../app.js';
import type { Config } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import { createRedisHub } from '../hub/redis-hub/redis-hub.js';
import { createRedisGenerationRegistry } from '../relay/redis-generations/redis-generation-registry.js';
import { createRedisTicketStore } from '../auth/redis-ticket-store.js';
import { createRedisLimitState } from '../limits/redis-limit-state.js';
import { createMemoryLimitState } from '../limits/memory-limit-state.js';
import { createFailoverLimitState } from '../limits/failover-limit-state.js';
import { cooldownPolicyOf } from '../routing/cooldown-policy.js';
import { createFailoverHealthStore } from '../routing/failover-health-store.js';
import { createMemoryHealthStore } from '../routing/memory-health-store.js';
import { createRedisHealthStore } from '../routing/redis-health-store.js';
import { createRedisConnections, describeTarget } from '../redis/connection.js';

export interface ClusterServices {
  /** What createApp takes in place of its memory implementations. */
  readonly dependencies: Required<Pick<AppDependencies, 'hub' | 'registry' | 'tickets' | 'limitState' | 'healthStore' | 'readiness'>>;
  /** Leaves the cluster: stops heartbeats and subscriptions, then closes the connections (after app.shutdown). */
  close(): Promise<void>;
}

/** How long the start waits for Redis before it goes on without it (and recovers when it comes). */
const startupWaitMs = 5000;

export async function openCluster(cluster: NonNullable<Config['cluster']>, config: Config, logger: Logger, now: () => number = Date.now): Promise<ClusterServices> {
  const redis = createRedisConnections({ ...cluster.redis, keyPrefix: cluster.keyPrefix, logger });
  try {
    await redis.ready(startupWaitMs);
  } catch {
    // A node that starts while Redis is down still serves what needs no shared state, reports
    // not ready, and joins the cluster by itself once Redis answers.
    logger.warn({ redis: describeTarget(cluster.redis) }, 'redis: not reachable at start; serving without shared state until it is');
  }
  const hub = createRedisHub({
    redis,
    nodeId: cluster.nodeId,
    now,
    retention: { count: config.hub.retentionCount, ageMs: config.hub.retentionMs },
    presenceTtlMs: cluster.presenceTtlMs,
    logger,
  });
  const registry = createRedisGenerationRegistry({ redis, nodeId: cluster.nodeId, retentionMs: config.generations.retentionMs, logger, now, presence: hub.presence, flushIntervalMs: cluster.logFlushMs });
  const limitState = createFailoverLimitState({ primary: createRedisLimitState(redis), fallback: createMemoryLimitState(), logger });
  const cooldown = cooldownPolicyOf(config);
  const healthStore = createFailoverHealthStore({
    primary: createRedisHealthStore(redis, cooldown, { recentHealthMs: cluster.recentHealthMs }),
    fallback: createMemoryHealthStore(cooldown),
    isHealthy: () => redis.healthy,
    logger,
  });
  return {
    dependencies: {
      hub,
      registry,
      tickets: createRedisTicketStore(redis, { now }),
      limitState,
      healthStore,
      readiness: () => (hub.listening && hub.presence.registered ? { ready: true } : { ready: false, reason: 'redis unreachable, or the hub not listening on it yet: shared state (hub, resumes on other nodes, cluster limits) is unavailable' }),
    },
    async close() {
      await registry.close();
      await hub.close();
      await redis.close();
    },
  };
}
