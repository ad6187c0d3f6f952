// Redis for the tests that need it, on both kinds the gateway supports: a single Redis
// (SLUICE_TEST_REDIS_URL, else the machine's Redis on 127.0.0.1:6379) and a Redis Cluster
// (SLUICE_TEST_REDIS_CLUSTER_NODES, else scripts/redis-cluster.sh's three masters on
// 127.0.0.1:7101-7103). A Redis test runs once per backend (`redisBackends()`); each test gets a key
// prefix of its own so parallel runs never see each other's keys.
// A backend that does not answer: in CI (or, for the cluster, with SLUICE_REQUIRE_REDIS_CLUSTER=1)
// its tests fail; elsewhere they skip and say why.
import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Cluster, Redis, type Command } from 'ioredis';
import type { RedisCommands, RedisTarget } from '../../src/redis/connection.js';

export const redisUrl = process.env['SLUICE_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** The seed nodes of the test Redis Cluster. */
export const redisClusterNodes = (process.env['SLUICE_TEST_REDIS_CLUSTER_NODES'] ?? 'redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103').split(',');

export interface RedisBackend {
  /** `redis` or `redis-cluster`: what the tests' names show. */
  readonly name: 'redis' | 'redis-cluster';
  /** What createRedisConnections takes (spread it), and config's cluster.redis. */
  readonly target: RedisTarget;
  /** Whether it answers; when false the backend's tests skip. */
  readonly available: boolean;
}

/** Sends one inline command to `url` and resolves to the first reply's text ('' when nothing answers within a second). */
async function ask(url: string, command: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port || 6379) });
    let text = '';
    const done = (answer: string) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(1000, () => done(text));
    socket.once('error', () => done(''));
    socket.once('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (data) => {
      text += data.toString();
      // A bulk reply ($<length>) is whole when its body has arrived; a simple one at its CRLF.
      const bulk = /^\$(\d+)\r\n/.exec(text);
      if (!bulk || text.length >= bulk[0].length + Number(bulk[1]) + 2) done(text);
    });
  });
}

/** True when something answers PING at `url` within a second. */
export async function redisAnswers(url = redisUrl): Promise<boolean> {
  return (await ask(url, 'PING')).startsWith('+PONG');
}

/** True when the cluster's first seed node says cluster_state:ok. */
export async function redisClusterAnswers(nodes = redisClusterNodes): Promise<boolean> {
  return (await ask(nodes[0] ?? '', 'CLUSTER INFO')).includes('cluster_state:ok');
}

/**
 * Whether the single-Redis tests can run. In CI an unreachable Redis is an error (the tests must run
 * there); elsewhere they are skipped with a warning naming the URL.
 */
export async function redisAvailable(): Promise<boolean> {
  if (await redisAnswers()) return true;
  if (process.env['CI']) throw new Error(`Redis does not answer at ${redisUrl}; .ci/run starts it (redis-server --daemonize yes --port 6379)`);
  console.warn(`Skipping the Redis tests: nothing answers at ${redisUrl} (set SLUICE_TEST_REDIS_URL, or start redis-server).`);
  return false;
}

/**
 * Whether the Redis Cluster tests can run. With SLUICE_REQUIRE_REDIS_CLUSTER=1 (.ci/run sets it) a
 * cluster that is not up is an error; elsewhere they are skipped with a warning saying how to start it.
 */
export async function redisClusterAvailable(): Promise<boolean> {
  if (await redisClusterAnswers()) return true;
  const how = `nothing answers cluster_state:ok at ${redisClusterNodes.join(', ')} (run scripts/redis-cluster.sh start, or set SLUICE_TEST_REDIS_CLUSTER_NODES)`;
  if (process.env['SLUICE_REQUIRE_REDIS_CLUSTER'] === '1') throw new Error(`The Redis Cluster tests must run (SLUICE_REQUIRE_REDIS_CLUSTER=1), but ${how}`);
  console.warn(`Skipping the Redis Cluster tests: ${how}.`);
  return false;
}

/** Both backends, each with whether it answers: run the Redis tests once per entry. */
export async function redisBackends(): Promise<RedisBackend[]> {
  return [
    { name: 'redis', target: { url: redisUrl }, available: await redisAvailable() },
    { name: 'redis-cluster', target: { clusterNodes: redisClusterNodes }, available: await redisClusterAvailable() },
  ];
}

/** A plain ioredis client for `backend`, for what a test reads or cleans behind the gateway's back. */
export function openClient(backend: RedisBackend): RedisCommands {
  const { target } = backend;
  if (target.clusterNodes === undefined) return new Redis(target.url);
  return new Cluster(target.clusterNodes.map((url) => ({ host: new URL(url).hostname, port: Number(new URL(url).port) })));
}

/** A key prefix of this test's own, e.g. `sluice-test-1a2b3c4d:`. */
export function uniqueKeyPrefix(): string {
  return `sluice-test-${randomBytes(4).toString('hex')}:`;
}

/**
 * The servers to scan: a single Redis, or every master of a cluster (each holds its own slots'
 * keys). A cluster client knows its masters only once it is ready: a fresh one (openClient) lists
 * none, and a cleanup through it would silently delete nothing.
 */
async function scanTargets(client: RedisCommands): Promise<Redis[]> {
  if (!(client instanceof Cluster)) return [client];
  if (client.status !== 'ready') {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the Redis Cluster client is not ready after 5 s (${client.status})`)), 5000);
      client.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  return client.nodes('master');
}

/** Every key under `prefix`, sorted (SCAN on every master, not KEYS, so a shared Redis is never blocked). */
export async function keysUnder(client: RedisCommands, prefix: string): Promise<string[]> {
  const found: string[] = [];
  for (const server of await scanTargets(client)) {
    let cursor = '0';
    do {
      const [next, keys] = await server.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      found.push(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
  return found.sort();
}

/** Deletes every key under `prefix`: what a test leaves in the shared Redis (one DEL per key, so none crosses a slot). */
export async function deleteKeysUnder(client: RedisCommands, prefix: string): Promise<void> {
  const keys = await keysUnder(client, prefix);
  await Promise.all(keys.map((key) => client.del(key)));
}

/** Records the name of every command `client` sends from now on (scripts: evalsha, eval …). */
export function recordCommands(client: RedisCommands): string[] {
  const names: string[] = [];
  const target = client as unknown as { sendCommand: (command: Command, ...rest: unknown[]) => unknown };
  const send = target.sendCommand.bind(target);
  target.sendCommand = (command, ...rest) => {
    names.push(command.name);
    return send(command, ...rest);
  };
  return names;
}

export interface RedisProxy {
  /** redis://127.0.0.1:<port>, for createRedisConnections. */
  readonly url: string;
  /** Drops every connection and refuses new ones, as a Redis that went away. */
  cut(): void;
  restore(): void;
  /** Holds Redis's answers this long before passing them on (0: at once), as a Redis slow to answer. */
  setAnswerDelay(ms: number): void;
  close(): Promise<void>;
}

/** A TCP proxy to the single Redis at `target`, which a test can cut, restore and slow down. */
export async function startRedisProxy(target: string): Promise<RedisProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let isCut = false;
  let answerDelayMs = 0;
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server: Server = createServer((client) => {
    track(client);
    if (isCut) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: hostname, port: Number(port || 6379) });
    track(upstream);
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (answerDelayMs === 0) client.write(chunk);
      else setTimeout(() => client.writable && client.write(chunk), answerDelayMs);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy: no port');
  return {
    url: `redis://127.0.0.1:${address.port.toString()}`,
    cut() {
      isCut = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      isCut = false;
    },
    setAnswerDelay(ms) {
      answerDelayMs = ms;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
