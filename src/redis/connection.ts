// The Redis connections of a cluster node: one for commands, one for writes in the background,
// one for subscriptions (a subscribed ioredis connection can issue nothing else), a key prefix,
// and a health state that /readyz reads. Every command fails fast instead of hanging on a dead
// Redis: no offline queue, a command timeout, and reconnection in the background.
//
// Two kinds of Redis behind one interface: a single server (`url`) or a Redis Cluster (`clusterNodes`,
// its seed nodes; docs/deployment.md, "Redis Cluster"). On a cluster every script and transaction
// must touch one hash slot (src/redis/keys.ts), and publish/subscribe is sharded (SPUBLISH /
// SSUBSCRIBE), so that a channel lives on the master of its slot and SPUBLISH's answer counts every
// subscriber, as PUBLISH's does on a single server (docs/decisions/0019-redis-cluster.md).
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import { loadLuaScripts } from './lua-script.js';
import { ShardedSubscriber } from './sharded-subscriber.js';

/** Where Redis is: one server, or a Redis Cluster given by some of its nodes. */
export type RedisTarget =
  /** redis://host:port[/db] (rediss:// for TLS). */
  | { readonly url: string; readonly clusterNodes?: undefined }
  /** redis://host:port (rediss:// for TLS) of one or more nodes of a Redis Cluster; the rest are discovered. */
  | { readonly clusterNodes: readonly string[]; readonly url?: undefined };

export type RedisConnectionOptions = RedisTarget & {
  /** Prefix of every key and channel, so several deployments (or test runs) can share a Redis. Default `sluice:`. */
  keyPrefix?: string;
  /** A command that has no answer after this long fails (ms). Default 1000. */
  commandTimeoutMs?: number;
  logger: Logger;
};

/** What runs commands: a single server's client or a cluster's (both take the same commands). */
export type RedisCommands = Redis | Cluster;

export interface RedisConnections {
  /** For commands (and Lua scripts). */
  readonly command: RedisCommands;
  /**
   * For writes no request waits for (the generation log's copy, releases): on a single server a
   * connection of its own whose commands of one turn of the event loop leave in one write, at the
   * cost of that wait, so they stay off `command`, which the request path waits on (decision
   * 0030). On a cluster, `command` itself.
   */
  readonly background: RedisCommands;
  /** Every key and channel starts with this. */
  readonly keyPrefix: string;
  /** True on a Redis Cluster: one slot per script and transaction, sharded publish/subscribe. */
  readonly sharded: boolean;
  /** The publish command for Lua scripts: `PUBLISH`, or `SPUBLISH` on a cluster (the channel must share the script's slot). */
  readonly publishCommand: 'PUBLISH' | 'SPUBLISH';
  /** True while every connection is ready. */
  readonly healthy: boolean;
  /** Publishes `message`; resolves to how many subscribers received it. */
  publish(channel: string, message: string): Promise<number>;
  /** Subscribes the subscriber connection to each channel (sharded on a cluster, one slot at a time). */
  subscribe(...channels: string[]): Promise<void>;
  unsubscribe(...channels: string[]): Promise<void>;
  /** Calls `listener` with every message of every subscribed channel; returns the way to stop. */
  onMessage(listener: (channel: string, message: string) => void): () => void;
  /** Called on every change of `healthy`. */
  onHealthChange(listener: (healthy: boolean) => void): () => void;
  /** Resolves once every connection is ready (rejects after `timeoutMs`). */
  ready(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export function createRedisConnections(options: RedisConnectionOptions): RedisConnections {
  const keyPrefix = options.keyPrefix ?? 'sluice:';
  const where = describeTarget(options);
  const settings: RedisOptions = {
    // A command sent while disconnected fails at once instead of waiting in a queue: no request
    // may hang on a dead Redis (what needs no shared state keeps working without it).
    enableOfflineQueue: false,
    commandTimeout: options.commandTimeoutMs ?? 1000,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    // Keep trying in the background, at most every 2 s, so the node recovers by itself.
    retryStrategy: (attempt) => Math.min(100 * attempt, 2000),
    lazyConnect: false,
  };
  const listeners = new Set<(healthy: boolean) => void>();
  const messageListeners = new Set<(channel: string, message: string) => void>();
  const deliver = (channel: unknown, message: unknown): void => {
    for (const listener of messageListeners) listener(String(channel), String(message));
  };
  let healthy = false;
  let closing = false;
  const sharded = options.clusterNodes !== undefined;
  let command: RedisCommands;
  let background: RedisCommands | undefined;
  // One Redis for SUBSCRIBE on a single server; on a cluster, a subscriber per master (sharded).
  let subscriber: Redis | undefined;
  let shards: ShardedSubscriber | undefined;
  if (options.clusterNodes !== undefined) {
    const cluster = openCluster(options.clusterNodes, settings);
    // Each master's connection gets the scripts first: it is created (and later re-created after
    // it drops) waiting to connect, with its own queue, so the loads go out ahead of anything the
    // cluster routes to it.
    cluster.on('+node', (node: Redis) => {
      if (node.options.readOnly !== true) loadLuaScripts(node);
    });
    for (const node of cluster.nodes('master')) loadLuaScripts(node);
    command = cluster;
    shards = new ShardedSubscriber(cluster, { ...settings, ...cluster.options.redisOptions }, deliver, () => update());
  } else {
    command = new Redis(options.url, { ...settings, connectionName: 'sluice-command' });
    // Writes nobody waits for leave in one write per turn of the event loop (decision 0030).
    // Not on a cluster: ioredis groups them by the first argument, which for EVALSHA is the
    // digest, not a key (ioredis issue 2109).
    background = new Redis(options.url, { ...settings, enableAutoPipelining: true, connectionName: 'sluice-background' });
    subscriber = new Redis(options.url, { ...settings, connectionName: 'sluice-subscriber' });
    subscriber.on('message', deliver);
  }

  const update = (): void => {
    const now = command.status === 'ready' && (background === undefined || background.status === 'ready') && (subscriber ? subscriber.status === 'ready' : shards?.ready === true);
    if (now === healthy || closing) return;
    healthy = now;
    // Logged once per change of state, not once per failed command or reconnection attempt.
    if (now) options.logger.info(sharded ? 'redis: connected to the cluster' : 'redis: connected');
    else options.logger.warn('redis: unreachable; shared state (hub, resumes across nodes, limits) is unavailable until it is back');
    for (const listener of listeners) listener(now);
  };
  // A single server's connections that run scripts load them as they become ready, before any
  // other command is sent on them (loadLuaScripts says why); again after each reconnection, for a
  // Redis that restarted has forgotten them.
  for (const connection of [command, background]) {
    if (connection instanceof Redis) connection.on('ready', () => loadLuaScripts(connection));
  }
  for (const connection of [command, background, subscriber]) {
    if (connection === undefined) continue;
    connection.on('ready', update);
    connection.on('close', update);
    connection.on('end', update);
    // Errors surface as failed commands and a health change; an unhandled 'error' would crash.
    connection.on('error', () => update());
  }

  return {
    command,
    background: background ?? command,
    keyPrefix,
    sharded,
    publishCommand: sharded ? 'SPUBLISH' : 'PUBLISH',
    get healthy() {
      return healthy;
    },
    async publish(channel, message) {
      return Number(sharded ? await command.spublish(channel, message) : await command.publish(channel, message));
    },
    async subscribe(...channels) {
      if (subscriber) await subscriber.subscribe(...channels);
      else for (const channel of channels) await shards?.subscribe(channel);
    },
    async unsubscribe(...channels) {
      if (subscriber) await subscriber.unsubscribe(...channels);
      else for (const channel of channels) await shards?.unsubscribe(channel);
    },
    onMessage(listener) {
      messageListeners.add(listener);
      return () => messageListeners.delete(listener);
    },
    onHealthChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    ready(timeoutMs = 5000) {
      if (healthy) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          stop();
          reject(new Error(`redis: not ready after ${timeoutMs.toString()} ms at ${where}`));
        }, timeoutMs);
        const stop = this.onHealthChange((now) => {
          if (!now) return;
          clearTimeout(timer);
          stop();
          resolve();
        });
      });
    },
    async close() {
      closing = true;
      listeners.clear();
      messageListeners.clear();
      shards?.close();
      await Promise.allSettled([command.quit(), background?.quit(), subscriber?.quit()]);
      command.disconnect();
      background?.disconnect();
      subscriber?.disconnect();
    },
  };
}

/**
 * A Redis Cluster client from seed node URLs. The credentials and TLS of the first URL apply to
 * every node (a cluster shares them).
 */
function openCluster(urls: readonly string[], settings: RedisOptions): Cluster {
  const seeds: ClusterNode[] = urls.map((url) => {
    const parsed = new URL(url);
    return { host: parsed.hostname, port: Number(parsed.port || 6379) };
  });
  const first = new URL(urls[0] ?? 'redis://127.0.0.1:6379');
  const { retryStrategy, ...perNode } = settings;
  return new Cluster(seeds, {
    // As on a single server: fail at once while the cluster is not ready, never queue.
    enableOfflineQueue: false,
    enableReadyCheck: true,
    // The same pace as a single server's reconnection, and never giving up.
    clusterRetryStrategy: (attempt) => retryStrategy?.(attempt) ?? 2000,
    slotsRefreshTimeout: 2000,
    redisOptions: {
      ...perNode,
      connectionName: 'sluice-command',
      ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
      ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
      ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
    },
  });
}

/** Where the connections go, without passwords, for messages. */
export function describeTarget(target: RedisTarget): string {
  return target.clusterNodes !== undefined ? `the Redis Cluster at ${target.clusterNodes.map(redactUrl).join(', ')}` : redactUrl(target.url);
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis://(invalid URL)';
  }
}
