// Redis for the tests that need it: the URL (SLUICE_TEST_REDIS_URL, else the machine's Redis on
// 127.0.0.1:6379), whether it answers, and a key prefix of each test's own so parallel runs never
// see each other's keys. In CI a missing Redis fails the tests; elsewhere they skip and say why.
import { randomBytes } from 'node:crypto';
import { createConnection } from 'node:net';

export const redisUrl = process.env['SLUICE_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** True when something answers PING at redisUrl within a second. */
export async function redisAnswers(url = redisUrl): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port || 6379) });
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

/**
 * Whether the Redis tests can run. In CI an unreachable Redis is an error (the tests must run
 * there); elsewhere they are skipped with a warning naming the URL.
 */
export async function redisAvailable(): Promise<boolean> {
  if (await redisAnswers()) return true;
  if (process.env['CI']) throw new Error(`Redis does not answer at ${redisUrl}; .ci/run starts it (redis-server --daemonize yes --port 6379)`);
  console.warn(`Skipping the Redis tests: nothing answers at ${redisUrl} (set SLUICE_TEST_REDIS_URL, or start redis-server).`);
  return false;
}

/** A key prefix of this test's own, e.g. `sluice-test-1a2b3c4d:`. */
export function uniqueKeyPrefix(): string {
  return `sluice-test-${randomBytes(4).toString('hex')}:`;
}

/** The part of an ioredis client these helpers use. */
interface ScanningClient {
  scan(cursor: string, match: 'MATCH', pattern: string, count: 'COUNT', size: number): Promise<[string, string[]]>;
  del(...keys: string[]): Promise<number>;
}

/** Every key under `prefix`, sorted (SCAN, not KEYS, so a shared Redis is never blocked). */
export async function keysUnder(redis: ScanningClient, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found.sort();
}

/** Deletes every key under `prefix`: what a test leaves in the shared Redis. */
export async function deleteKeysUnder(redis: ScanningClient, prefix: string): Promise<void> {
  const keys = await keysUnder(redis, prefix);
  for (let index = 0; index < keys.length; index += 500) await redis.del(...keys.slice(index, index + 500));
}
