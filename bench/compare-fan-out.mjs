// Compares push fan-out (npm run bench's `cluster` measure: three cluster nodes, 5000 hub streams,
// the last arrival per push) between two builds in one run: this checkout's nodes and another's (a
// copy of the repository at an earlier commit, built), both driven by this checkout's driver
// (bench/hub-clients.mjs), in alternating turns so that load from elsewhere on the machine hits
// both alike. COMPARE_OWN_DRIVER=1 drives each build's nodes with that checkout's own driver
// instead (the whole before and after of a change to both). Also reports the CPU the three nodes
// spent per push, read from /proc, when the driver measures it (docs/decisions/0024-push-fan-out.md).
//
//   git worktree add /tmp/sluice-base <commit> && (cd /tmp/sluice-base && npm run build)
//   COMPARE_BASE=/tmp/sluice-base COMPARE_TURNS=3 node bench/compare-fan-out.mjs   (100 rounds a turn; COMPARE_ROUNDS to change)
import * as self from './hub-clients.mjs';
import * as selfProcesses from './processes.mjs';

const baseRoot = process.env.COMPARE_BASE;
if (!baseRoot) throw new Error('COMPARE_BASE: the path of the other checkout (built) is required');
const builds = { base: await import(`${baseRoot}/bench/processes.mjs`), this: selfProcesses };
const drivers = { base: process.env.COMPARE_OWN_DRIVER === '1' ? await import(`${baseRoot}/bench/hub-clients.mjs`) : self, this: self };
const turns = Number(process.env.COMPARE_TURNS ?? 3);
const rounds = Number(process.env.COMPARE_ROUNDS ?? 100);
const count = Number(process.env.COMPARE_CONNECTIONS ?? 5000);
const results = { base: { p50: [], p99: [], cpu: [] }, this: { p50: [], p99: [], cpu: [] } };

/** Three fresh nodes of `build` on a key prefix and schema of their own; pushFanOut over them. */
async function turn(name) {
  const processes = builds[name];
  const clients = drivers[name];
  if (!(await clients.clusterServicesAnswer())) throw new Error('Redis or PostgreSQL does not answer');
  const suffix = Math.random().toString(16).slice(2, 10);
  const keyPrefix = `sluice-compare-${suffix}:`;
  const schema = `sluice_compare_${suffix}`;
  const nodes = [];
  try {
    for (const nodeId of ['compare-1', 'compare-2', 'compare-3']) {
      nodes.push(await processes.startSluice('http://127.0.0.1:9', { storeUrl: `${clients.postgresUrl}?schema=${schema}`, cluster: { redisUrl: clients.redisUrl, nodeId, keyPrefix }, openFiles: 20_000 }));
    }
    const fanOut = await clients.pushFanOut(nodes, { count, rounds });
    const cpuMs = fanOut.nodeCpuMsPerPush ?? Number.NaN;
    results[name].p50.push(fanOut.p50);
    results[name].p99.push(fanOut.p99);
    results[name].cpu.push(cpuMs);
    console.log(`${name}: last arrival p50 ${fanOut.p50?.toFixed(1)} ms, p99 ${fanOut.p99?.toFixed(1)} ms (${fanOut.complete}/${rounds} rounds whole), node CPU ${cpuMs.toFixed(0)} ms per push`);
  } finally {
    await Promise.all(nodes.map((node) => node.stop()));
    await clients.deleteClusterState(keyPrefix, schema);
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
try {
  for (let index = 0; index < turns; index++) for (const name of index % 2 === 0 ? ['base', 'this'] : ['this', 'base']) await turn(name);
  for (const name of ['base', 'this']) {
    const { p50, p99, cpu } = results[name];
    console.log(`${name.padEnd(4)} median of ${turns} turns: p50 ${median(p50).toFixed(1)} ms, p99 ${median(p99).toFixed(1)} ms, node CPU ${median(cpu).toFixed(0)} ms per push`);
  }
} finally {
  await self.closeHubClients();
  if (drivers.base !== self) await drivers.base.closeHubClients();
  await selfProcesses.stopAll();
  await builds.base.stopAll();
}
process.exit(0);
