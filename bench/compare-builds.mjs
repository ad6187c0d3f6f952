// Compares two builds of Sluice in one run: this checkout's dist/ and another checkout's (a copy
// of the repository at an earlier commit, built), side by side with the lean relay, in rounds
// that rotate which goes first. On a shared machine, ratios between runs drift by ±15%; an A/B
// in one run is what an optimisation is judged by (decision 0023). COMPARE_NON_STREAMED=1 loads
// non-streamed requests instead of streams (the per-request path, decision 0025); the latency
// figures are always 200-chunk streams at C=1, time to first and to last byte. COMPARE_CLUSTER=1
// runs both builds as cluster nodes (usage in PostgreSQL, generation logs and health in Redis)
// serving POST /api/chat, against this build as a single node on the same PostgreSQL in place of
// the lean relay: the bench's cluster CPU measure, as an A/B. COMPARE_SWAP=1 starts this build
// before the base (run both orders: a second process of one build has measured up to 20 % off the
// first). COMPARE_CPU=0 measures latency only, as `npm run bench` does: per round, COMPARE_LATENCY
// sequential streams to each target in turn, and the verdict is the median over rounds of the
// per-round p50 differences (decision 0027); `COMPARE_CPU=0 COMPARE_ROUNDS=20 COMPARE_LATENCY=100`
// is the bench's latency measure as an A/B.
//
//   git worktree add /tmp/sluice-base <commit> && (cd /tmp/sluice-base && npm run build)
//   COMPARE_BASE=/tmp/sluice-base COMPARE_ROUNDS=9 COMPARE_STREAMS=2000 node bench/compare-builds.mjs
import { Agent } from 'undici';
import { chat as sendChat } from './chat-client.mjs';
import { deleteClusterState, postgresUrl, redisUrl } from './hub-clients.mjs';
import { cpuSeconds, startScript, startSluice, stopAll } from './processes.mjs';
import { perRoundDifference } from './report.mjs';

const baseRoot = process.env.COMPARE_BASE;
if (!baseRoot) throw new Error('COMPARE_BASE: the path of the other checkout (built) is required');
const base = await import(`${baseRoot}/bench/processes.mjs`);
const rounds = Number(process.env.COMPARE_ROUNDS ?? 9);
const total = Number(process.env.COMPARE_STREAMS ?? 2000);
const nonStreamed = process.env.COMPARE_NON_STREAMED === '1';
const latencyRequests = Number(process.env.COMPARE_LATENCY ?? 40);
const clustered = process.env.COMPARE_CLUSTER === '1';
const measureCpu = process.env.COMPARE_CPU !== '0';
const agent = new Agent({ connections: 4096, keepAliveTimeout: 60_000, pipelining: 1 });

/** One 200-chunk answer, streamed or not, checked whole; the times to its first and last byte. */
async function chat(url, stream = !nonStreamed) {
  const { firstByteMs, totalMs } = await sendChat(url, { dispatcher: agent, stream, native: clustered });
  return { firstMs: firstByteMs, lastMs: totalMs };
}

async function load(url, count, concurrency = 64) {
  let started = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (started < count) { started++; await chat(url); } }));
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

// The cluster comparison's schema and key prefixes, deleted at the end whatever happens. Each build
// is a cluster of its own (its own key prefix on the same Redis): nodes of one cluster agree on the
// generation log's format, and a node of an older build would hold a newer one to the older format
// (decision 0035).
const suffix = Math.random().toString(16).slice(2, 10);
const keyPrefixes = { base: `sluice-compare-${suffix}-base:`, this: `sluice-compare-${suffix}-this:` };
const schema = `sluice_compare_${suffix}`;

try {
  const upstream = await startScript('mock-upstream.mjs');
  const storeUrl = `${postgresUrl}?schema=${schema}`;
  // One at a time: the first start migrates the schema for all.
  const clusterOptions = (build) => ({ storeUrl, retentionMs: 15_000, cluster: { redisUrl, nodeId: `compare-${build}`, keyPrefix: keyPrefixes[build] } });
  const startBase = () => (clustered ? base.startSluice(upstream.url, clusterOptions('base')) : base.startSluice(upstream.url));
  const startThis = () => (clustered ? startSluice(upstream.url, clusterOptions('this')) : startSluice(upstream.url));
  // The reference first: this build as a single node on the same PostgreSQL, or the lean relay.
  const referenceTarget = clustered ? await startSluice(upstream.url, { storeUrl, retentionMs: 15_000 }) : await startScript('lean-relay.mjs', { UPSTREAM_URL: `${upstream.url}/v1` });
  // COMPARE_SWAP=1 starts this build before the base (to tell a build's effect from its place).
  let baseTarget;
  let thisTarget;
  if (process.env.COMPARE_SWAP === '1') {
    thisTarget = await startThis();
    baseTarget = await startBase();
  } else {
    baseTarget = await startBase();
    thisTarget = await startThis();
  }
  const targets = { [clustered ? 'single' : 'lean']: referenceTarget, base: baseTarget, this: thisTarget };
  const names = Object.keys(targets);
  const reference = names[0];
  const cpu = Object.fromEntries(names.map((name) => [name, []]));
  const latency = Object.fromEntries(names.map((name) => [name, []]));
  const firstByte = Object.fromEntries(names.map((name) => [name, []]));
  // Warms up the JIT; V8 is still optimising Sluice after several thousand streams (decision 0027).
  for (const name of names) await load(targets[name].url, measureCpu ? 1500 : 9000);
  /** Per target, the p50 of each round's last bytes (latency only). */
  const roundP50s = Object.fromEntries(names.map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    const order = [...names.slice(round % names.length), ...names.slice(0, round % names.length)];
    if (!measureCpu) {
      for (const name of order) {
        const lasts = [];
        for (let index = 0; index < latencyRequests; index++) {
          const { firstMs, lastMs } = await chat(targets[name].url, true);
          lasts.push(lastMs);
          firstByte[name].push(firstMs);
        }
        latency[name].push(...lasts);
        roundP50s[name].push(median(lasts));
      }
      continue;
    }
    for (const name of order) {
      const before = cpuSeconds(targets[name].pids());
      await load(targets[name].url, total);
      cpu[name].push(((cpuSeconds(targets[name].pids()) - before) / total) * 1000);
    }
    // One request to each in turn, so a burst of load from elsewhere falls on all of them alike.
    for (let index = 0; index < latencyRequests; index++) {
      for (const name of order) {
        const { firstMs, lastMs } = await chat(targets[name].url, true);
        latency[name].push(lastMs);
        firstByte[name].push(firstMs);
      }
    }
  }
  if (!measureCpu) {
    const differenceOf = (a, b) => {
      const { difference, lowest, highest } = perRoundDifference(roundP50s[a], roundP50s[b]);
      return `${difference >= 0 ? '+' : ''}${difference.toFixed(3)} ms (${rounds} rounds: ${lowest.toFixed(2)} to ${highest.toFixed(2)})`;
    };
    for (const name of names) console.log(`${name.padEnd(6)} stream at C=1: first byte p50 ${median(firstByte[name]).toFixed(2)} ms, last byte p50 ${median(latency[name]).toFixed(2)} ms`);
    console.log(`base − ${reference}: ${differenceOf('base', reference)}; this − ${reference}: ${differenceOf('this', reference)}; this − base: ${differenceOf('this', 'base')}`);
  }
  for (const name of measureCpu ? names : []) {
    const what = clustered ? 'native streams' : nonStreamed ? 'non-streamed' : 'streams';
    console.log(`${name.padEnd(6)} CPU s per 1000 ${what} ${median(cpu[name]).toFixed(3)} (${(median(cpu[name]) / median(cpu[reference])).toFixed(2)}× ${reference}; rounds ${cpu[name].map((value) => value.toFixed(2)).join(' ')}), stream at C=1: first byte p50 ${median(firstByte[name]).toFixed(2)} ms, last byte p50 ${median(latency[name]).toFixed(2)} ms (+${(median(latency[name]) - median(latency[reference])).toFixed(2)} over ${reference})`);
  }
} finally {
  await stopAll();
  await base.stopAll();
  if (clustered) {
    await deleteClusterState(keyPrefixes.base, schema);
    await deleteClusterState(keyPrefixes.this, schema);
  }
}
process.exit(0);
