// What copying generation logs to Redis costs when the upstream sends a token per read, as a real
// model does (the bench's CPU measures use streams sent as fast as the socket takes them, which
// cost two copies each whatever `cluster.logFlushMs` is). For each value of `cluster.logFlushMs`
// (PACED_FLUSH_MS, default "0,50"), a fresh cluster node serves PACED_STREAMS native streams
// (default 1200), PACED_CONCURRENCY at a time (default 300), of PACED_TOKENS tokens (default 50)
// one every BENCH_PACE_MS (default 20) ms; it prints the node's CPU per 1000 streams, Redis's own
// CPU per 1000 streams, and the scripts Redis ran per stream, after the same for a single node
// (same PostgreSQL, no Redis) as the reference. Needs Redis and PostgreSQL.
//
//   npm run build && node bench/cluster-paced.mjs
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { clusterServicesAnswer, deleteClusterState, postgresUrl, redisUrl } from './hub-clients.mjs';
import { benchKey as key, cpuSeconds, startScript, startSluice, stopAll } from './processes.mjs';

const flushValues = (process.env.PACED_FLUSH_MS ?? '0,50').split(',').map(Number);
const total = Number(process.env.PACED_STREAMS ?? 1200);
const concurrency = Number(process.env.PACED_CONCURRENCY ?? 300);
const tokens = Number(process.env.PACED_TOKENS ?? 50);
const agent = new Agent({ connections: concurrency + 10, keepAliveTimeout: 60_000 });

async function stream(url) {
  const response = await request(`${url}/api/chat`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, accept: 'text/event-stream' },
    body: JSON.stringify({ model: 'paced', message: 'Benchmark me.', params: { max_tokens: tokens } }),
  });
  const text = await response.body.text();
  if (response.statusCode !== 200 || !text.includes(`token${tokens - 1} `) || !text.includes('event: done')) throw new Error(`incomplete stream: ${response.statusCode} ${text.slice(0, 200)}`);
}

async function load(url, count) {
  let started = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (started < count) { started++; await stream(url); } }));
}

/** Redis's CPU seconds so far and how many scripts it ran. */
async function redisCounters(redis) {
  const cpu = await redis.info('cpu');
  const seconds = ['used_cpu_sys', 'used_cpu_user'].reduce((sum, field) => sum + Number(new RegExp(`${field}:([\\d.]+)`).exec(cpu)?.[1] ?? 0), 0);
  const stats = await redis.info('commandstats');
  const scripts = ['evalsha', 'eval'].reduce((sum, name) => sum + Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0), 0);
  return { seconds, scripts };
}

if (!(await clusterServicesAnswer())) process.exit(0);
const redis = new Redis(redisUrl);
try {
  const upstream = await startScript('mock-upstream.mjs');
  for (const logFlushMs of ['single', ...flushValues]) {
    const suffix = Math.random().toString(16).slice(2, 10);
    const keyPrefix = `sluice-paced-${suffix}:`;
    const schema = `sluice_paced_${suffix}`;
    const cluster = logFlushMs === 'single' ? undefined : { redisUrl, nodeId: 'paced', keyPrefix, logFlushMs };
    const node = await startSluice(upstream.url, { storeUrl: `${postgresUrl}?schema=${schema}`, retentionMs: 15_000, cluster });
    try {
      await load(node.url, Math.min(300, total)); // warm-up
      const before = { node: cpuSeconds(node.pids()), redis: await redisCounters(redis) };
      await load(node.url, total);
      const after = { node: cpuSeconds(node.pids()), redis: await redisCounters(redis) };
      console.log(
        `${logFlushMs === 'single' ? 'single node   ' : `logFlushMs ${String(logFlushMs).padStart(3)}`}: node CPU s per 1000 streams ${(((after.node - before.node) / total) * 1000).toFixed(3)}, ` +
          `Redis CPU s per 1000 streams ${(((after.redis.seconds - before.redis.seconds) / total) * 1000).toFixed(3)}, ` +
          `scripts per stream ${((after.redis.scripts - before.redis.scripts) / total).toFixed(1)} (${tokens} tokens, ${concurrency} at a time)`,
      );
    } finally {
      await node.stop();
      await deleteClusterState(keyPrefix, schema);
    }
  }
} finally {
  redis.disconnect();
  await stopAll();
  await agent.close();
}
process.exit(0);
