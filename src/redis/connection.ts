// The Redis connections of a cluster node: one for commands, one for subscriptions (a subscribed
// ioredis connection can issue nothing else), a key prefix, and a health state that /readyz
// reads. Every command fails fast instead of hanging on a dead Redis: no offline queue, a command
// timeout, and reconnection in the background.
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../observability/logger.js';

export interface RedisConnectionOptions {
  /** redis://host:port[/db] (rediss:// for TLS). */
  url: string;
  /** Prefix of every key and channel, so several deployments (or test runs) can share a Redis. Default `sluice:`. */
  keyPrefix?: string;
  /** A command that has no answer after this long fails (ms). Default 1000. */
  commandTimeoutMs?: number;
  logger: Logger;
}

export interface RedisConnections {
  /** For commands (and Lua scripts). */
  readonly command: Redis;
  /** For SUBSCRIBE / PSUBSCRIBE only. */
  readonly subscriber: Redis;
  /** Every key and channel starts with this. */
  readonly keyPrefix: string;
  /** True while both connections are ready. */
  readonly healthy: boolean;
  /** Called on every change of `healthy`. */
  onHealthChange(listener: (healthy: boolean) => void): () => void;
  /** Resolves once both connections are ready (rejects after `timeoutMs`). */
  ready(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export function createRedisConnections(options: RedisConnectionOptions): RedisConnections {
  const keyPrefix = options.keyPrefix ?? 'sluice:';
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
  const command = new Redis(options.url, { ...settings, connectionName: 'sluice-command' });
  const subscriber = new Redis(options.url, { ...settings, connectionName: 'sluice-subscriber' });
  const listeners = new Set<(healthy: boolean) => void>();
  let healthy = false;
  let closing = false;

  const update = (): void => {
    const now = command.status === 'ready' && subscriber.status === 'ready';
    if (now === healthy || closing) return;
    healthy = now;
    // Logged once per change of state, not once per failed command or reconnection attempt.
    if (now) options.logger.info('redis: connected');
    else options.logger.warn('redis: unreachable; shared state (hub, resumes across nodes, limits) is unavailable until it is back');
    for (const listener of listeners) listener(now);
  };
  for (const connection of [command, subscriber]) {
    connection.on('ready', update);
    connection.on('close', update);
    connection.on('end', update);
    // Errors surface as failed commands and a health change; an unhandled 'error' would crash.
    connection.on('error', () => update());
  }

  return {
    command,
    subscriber,
    keyPrefix,
    get healthy() {
      return healthy;
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
          reject(new Error(`redis: not ready after ${timeoutMs.toString()} ms at ${redactUrl(options.url)}`));
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
      await Promise.allSettled([command.quit(), subscriber.quit()]);
      command.disconnect();
      subscriber.disconnect();
    },
  };
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
