// Cluster mode hands the app a shared upstream health: a cooldown one node records holds on
// another, and while Redis is unreachable a node still reads health (from its own memory) rather
// than failing the request.
import { beforeAll, afterEach, describe, expect, it } from 'vitest';
import { redisBackends, type RedisBackend, deleteKeysUnder, uniqueKeyPrefix } from '../../test/support/redis.js';
import { unusedPort } from '../../test/support/tcp.js';
import { waitFor } from '../../test/support/wait.js';
import { resolveConfig } from '../config/load.js';
import { createLogger } from '../observability/logger.js';
import { createRedisConnections, type RedisTarget } from '../redis/connection.js';
import { openCluster, type ClusterServices } from './cluster.js';

const backends = await redisBackends();
/** The backend the running describe block tests (the blocks run one after another). */
let backend: RedisBackend = backends[0]!;
const logger = createLogger('silent');
const opened: ClusterServices[] = [];
const prefixes: string[] = [];

async function node(nodeId: string, keyPrefix: string, target: RedisTarget = backend.target): Promise<ClusterServices> {
  const redis = target.clusterNodes === undefined ? { redisUrl: target.url } : { redisClusterNodes: [...target.clusterNodes] };
  const config = resolveConfig({ cluster: { ...redis, nodeId, keyPrefix } }, {});
  if (config.cluster === undefined) throw new Error('the config has no cluster section');
  const services = await openCluster(config.cluster, config, logger);
  opened.push(services);
  return services;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((services) => services.close()));
  if (backend.available) {
    const cleaner = createRedisConnections({ ...backend.target, keyPrefix: '', logger });
    await cleaner.ready();
    for (const prefix of prefixes.splice(0)) await deleteKeysUnder(cleaner.command, prefix);
    await cleaner.close();
  }
});

for (const each of backends) describe(`cluster upstream health (${each.name})`, () => {
  beforeAll(() => {
    backend = each;
  });
  it.skipIf(!each.available)('is shared: a cooldown recorded on one node holds on the other', async () => {
    const keyPrefix = uniqueKeyPrefix();
    prefixes.push(keyPrefix);
    const first = await node('node-1', keyPrefix);
    const second = await node('node-2', keyPrefix);
    // Both connected (a Redis Cluster client discovers its slots first): otherwise each node
    // rightly keeps the failure in its own memory, and the test would check nothing shared.
    await waitFor(() => first.dependencies.readiness().ready && second.dependencies.readiness().ready, 'both nodes connected to Redis', 10_000);
    const now = Date.now();
    await first.dependencies.healthStore.recordFailure('demo/demo', { code: 'upstream_unavailable' }, now);
    expect((await second.dependencies.healthStore.read(['demo/demo'], now)).get('demo/demo')?.state).toBe('cooling');
  });

  it('falls back to the node\'s memory while Redis is unreachable, instead of failing the request', async () => {
    const nowhere = `redis://127.0.0.1:${String(await unusedPort())}`;
    const services = await node('node-1', uniqueKeyPrefix(), each.target.url === undefined ? { clusterNodes: [nowhere] } : { url: nowhere });
    const health = services.dependencies.healthStore;
    await health.recordFailure('demo/demo', { code: 'upstream_unavailable' }, 0);
    expect((await health.read(['demo/demo'], 1)).get('demo/demo')?.state).toBe('cooling');
    const release = await health.acquire('demo/demo', 1);
    expect((await health.read(['demo/demo'], 1)).get('demo/demo')?.inFlight).toBe(1);
    release();
  });
});
