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

  it('to a Redis that is not there: unhealthy, and a command rejects within a second', async () => {
    const redis = createRedisConnections({ url: `redis://127.0.0.1:${(await unusedPort()).toString()}`, logger });
    expect(redis.healthy).toBe(false);
    const startedAt = performance.now();
    await expect(redis.command.get('anything')).rejects.toThrow();
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
