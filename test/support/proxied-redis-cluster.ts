// A Redis Cluster of a test's own that the test can take away and give back: three masters started
// for it on free ports, each reached through a TCP proxy (startRedisProxy), and each announcing its
// proxy's port as its address (`cluster-announce-port`), so that a cluster client, which learns
// the nodes' addresses from CLUSTER SLOTS rather than from its seeds, goes through the proxies too.
// The masters gossip with each other directly on their bus ports. Cutting the three proxies is a
// cluster that went away for its clients while it keeps its slots and data; restoring them is the
// same cluster back. The shared test cluster (scripts/redis-cluster.sh) cannot be used for that:
// other test files run on it at the same time.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { redisAnswers, startRedisProxy, type RedisProxy } from './redis.js';
import { unusedPort } from './tcp.js';
import { eventually } from './wait.js';

export interface ProxiedRedisCluster {
  /** The seed URLs a client is given: the three proxies. */
  readonly clusterNodes: string[];
  /** Drops every client connection to every master and refuses new ones. */
  cut(): void;
  restore(): void;
  /** Stops the masters and the proxies and removes their directory. */
  close(): Promise<void>;
}

/**
 * Why a cluster of the test's own cannot start here (no `redis-server` to run), or undefined. The
 * shared cluster may be elsewhere (SLUICE_TEST_REDIS_CLUSTER_NODES) on a machine without one.
 */
export function redisServerMissing(): string | undefined {
  const found = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  return found.error === undefined && found.status === 0 ? undefined : 'no redis-server on PATH to start a Redis Cluster of the test\'s own';
}

/** Slots per master, as `redis-cli --cluster create` splits them for three. */
const slotRanges: ReadonlyArray<readonly [number, number]> = [
  [0, 5460],
  [5461, 10922],
  [10923, 16383],
];

interface Master {
  readonly port: number;
  readonly busPort: number;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

/** One cluster-enabled redis-server on free ports; tries other ports when one was taken meanwhile. */
async function startMaster(directory: string, index: number): Promise<Master> {
  for (let attempt = 1; ; attempt++) {
    const port = await unusedPort();
    const busPort = await unusedPort();
    const child = spawn(
      'redis-server',
      [
        ...['--port', port.toString(), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-port', busPort.toString()],
        ...['--cluster-config-file', join(directory, `nodes-${index.toString()}.conf`), '--cluster-node-timeout', '2000'],
        ...['--dir', directory, '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
      ],
      { stdio: 'ignore' },
    );
    // A test worker that ends before close() (a timeout, a crash) takes its servers with it.
    const killOnExit = (): void => void child.kill('SIGKILL');
    process.once('exit', killOnExit);
    const exited = new Promise<void>((resolve) => {
      const gone = (): void => {
        process.off('exit', killOnExit);
        resolve();
      };
      child.once('exit', gone);
      // Not started at all (no such program): no 'exit' follows.
      child.once('error', gone);
    });
    let ended = false;
    void exited.then(() => (ended = true));
    for (let wait = 0; wait < 100 && !ended && !(await redisAnswers(`redis://127.0.0.1:${port.toString()}`)); wait++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (!ended && (await redisAnswers(`redis://127.0.0.1:${port.toString()}`))) return { port, busPort, child, exited };
    child.kill('SIGKILL');
    await exited;
    if (attempt === 3) throw new Error(`redis-server for a cluster of the test's own did not start (ports ${port.toString()}, ${busPort.toString()})`);
  }
}

/** Starts the three masters and their proxies; resolves once every master says cluster_state:ok. */
export async function startProxiedRedisCluster(): Promise<ProxiedRedisCluster> {
  const directory = mkdtempSync(join(tmpdir(), 'sluice-proxied-cluster-'));
  const masters: Master[] = [];
  const proxies: RedisProxy[] = [];
  const admins: Redis[] = [];
  const close = async (): Promise<void> => {
    for (const admin of admins) admin.disconnect();
    await Promise.all(proxies.map((proxy) => proxy.close()));
    for (const master of masters) master.child.kill('SIGKILL');
    await Promise.all(masters.map((master) => master.exited));
    rmSync(directory, { recursive: true, force: true });
  };
  try {
    for (const index of [0, 1, 2]) masters.push(await startMaster(directory, index));
    for (const master of masters) proxies.push(await startRedisProxy(`redis://127.0.0.1:${master.port.toString()}`));
    for (const master of masters) admins.push(new Redis({ host: '127.0.0.1', port: master.port, lazyConnect: true, maxRetriesPerRequest: 1 }));
    // The address each master gives its clients is its proxy's, set before the masters meet.
    await Promise.all(admins.map((admin, index) => admin.config('SET', 'cluster-announce-port', new URL(proxies[index]?.url ?? '').port)));
    await Promise.all(admins.map((admin, index) => admin.call('CLUSTER', 'ADDSLOTSRANGE', ...(slotRanges[index] ?? []).map(String))));
    for (const other of masters.slice(1)) await admins[0]?.call('CLUSTER', 'MEET', '127.0.0.1', other.port.toString(), other.busPort.toString());
    // Up, and every master gives every slot's owner at its proxy's address.
    const proxyPorts = proxies.map((proxy) => Number(new URL(proxy.url).port)).sort((a, b) => a - b);
    const formed = async (): Promise<true | undefined> => {
      const states = await Promise.all(admins.map((admin) => admin.call('CLUSTER', 'INFO')));
      const slots = (await Promise.all(admins.map((admin) => admin.call('CLUSTER', 'SLOTS')))) as Array<Array<[number, number, [string, number]]>>;
      const announced = slots.every((ranges) => ranges.map((range) => range[2][1]).sort((a, b) => a - b).join() === proxyPorts.join());
      return announced && states.every((info) => String(info).includes('cluster_state:ok')) ? true : undefined;
    };
    await eventually(formed, `a Redis Cluster of the test's own to reach cluster_state:ok (in ${directory})`, 15_000);
    return {
      clusterNodes: proxies.map((proxy) => proxy.url),
      cut: () => {
        for (const proxy of proxies) proxy.cut();
      },
      restore: () => {
        for (const proxy of proxies) proxy.restore();
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
