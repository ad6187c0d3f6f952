// The Redis connections fail fast and say when they are healthy: a command to a Redis that is not
// there rejects at once instead of hanging, and health follows the real connection state.
import { beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../observability/logger.js';
import { redisBackends, type RedisBackend } from '../../test/support/redis.js';
import { unusedPort } from '../../test/support/tcp.js';
import { createRedisConnections, redactUrl } from './connection.js';

const backends = await redisBackends();
/** The backend the running describe block tests (the blocks run one after another). */
let backend: RedisBackend = backends[0]!;
const logger = createLogger('silent');

for (const each of backends) describe.skipIf(!each.available)(`Redis connections (${each.name})`, () => {
  beforeAll(() => {
    backend = each;
  });
  it('become healthy, run commands, and close', async () => {
    const redis = createRedisConnections({ ...backend.target, logger });
    await redis.ready();
    expect(redis.healthy).toBe(true);
    expect(await redis.command.ping()).toBe('PONG');
    await redis.close();
  });

  it('send the background writes of one turn of the event loop together, and the request path\'s at once (decision 0030)', async () => {
    const redis = createRedisConnections({ ...backend.target, keyPrefix: `sluice-test-${Math.random().toString(16).slice(2)}:`, logger });
    await redis.ready();
    const key = `${redis.keyPrefix}{background}:counter`;
    try {
      const writes = Array.from({ length: 50 }, () => redis.background.incr(key));
      if (backend.name === 'redis') {
        // Queued for one pipeline at the end of this turn; the command connection is left alone.
        expect(redis.background).not.toBe(redis.command);
        expect(redis.background.autoPipelineQueueSize).toBeGreaterThanOrEqual(50);
        expect(redis.command.autoPipelineQueueSize).toBe(0);
      } else {
        // On a cluster ioredis would group scripts by their digest rather than their keys (ioredis issue 2109).
        expect(redis.background).toBe(redis.command);
        expect(redis.background.autoPipelineQueueSize).toBe(0);
      }
      // In order, each with its own answer.
      expect(await Promise.all(writes)).toEqual(Array.from({ length: 50 }, (_, index) => index + 1));
      expect(await redis.command.get(key)).toBe('50');
    } finally {
      await redis.command.del(key);
      await redis.close();
    }
  });

  it('to a Redis that is not there: unhealthy, and a command rejects within a second', async () => {
    const redis = createRedisConnections({ url: `redis://127.0.0.1:${(await unusedPort()).toString()}`, logger });
    expect(redis.healthy).toBe(false);
    const startedAt = performance.now();
    await expect(redis.command.get('anything')).rejects.toThrow();
    await expect(redis.background.set('anything', '1')).rejects.toThrow();
    expect(performance.now() - startedAt).toBeLessThan(1000);
    await expect(redis.ready(300)).rejects.toThrow(/not ready after 300 ms/);
    await redis.close();
  });
});

describe('redactUrl', () => {
  it('hides the password', () => {
    expect(redactUrl('redis://user:secret@cache:6379/0')).toBe('redis://user:***@cache:6379/0');
    expect(redactUrl('not a url')).toBe('redis://(invalid URL)');
  });
});
