// How long the hub's heartbeats stall a node: one fresh Sluice holding `STALL_CONNECTIONS` (default
// 5000) idle GET /api/events streams, with `server.heartbeatMs` at `STALL_HEARTBEAT_MS` (default
// 15 000), answers GET /healthz every 20 ms for `STALL_SECONDS` (default two intervals and a
// second); a request that arrives while heartbeats are being written waits for them, so the
// slowest answers are the longest stall. With COMPARE_BASE (another checkout, built) the same runs
// on both builds in alternating turns (COMPARE_TURNS, default 2), so that load from elsewhere on the
// machine hits both alike (docs/decisions/0042-heartbeats-in-slices.md).
//
//   npm run build && node bench/heartbeat-stall.mjs
//   git worktree add /tmp/sluice-base <commit> && (cd /tmp/sluice-base && npm run build)
//   COMPARE_BASE=/tmp/sluice-base node bench/heartbeat-stall.mjs
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { closeHubClients, closeSockets, openIdleStreams } from './hub-clients.mjs';
import * as selfProcesses from './processes.mjs';
import { percentile } from './report.mjs';

const heartbeatMs = Number(process.env.STALL_HEARTBEAT_MS ?? 15_000);
const count = Number(process.env.STALL_CONNECTIONS ?? 5000);
const seconds = Number(process.env.STALL_SECONDS ?? (2 * heartbeatMs + 1000) / 1000);
const baseRoot = process.env.COMPARE_BASE;
const builds = { this: selfProcesses, ...(baseRoot ? { base: await import(`${baseRoot}/bench/processes.mjs`) } : {}) };
const turns = baseRoot ? Number(process.env.COMPARE_TURNS ?? 2) : 1;
const agent = new Agent({ pipelining: 1, keepAliveTimeout: 60_000 });

/** One fresh node of `name`'s build: the /healthz answer times (ms) while it holds the streams. */
async function turn(name) {
  const node = await builds[name].startSluice('http://127.0.0.1:9', { heartbeatMs, openFiles: 20_000 });
  const sockets = [];
  try {
    const streams = await openIdleStreams(Number(new URL(node.url).port), '/api/events', count, sockets);
    // Past one interval, so that every stream has joined the heartbeat before the sampling starts.
    await sleep(heartbeatMs + 500);
    const times = [];
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      const sentAt = performance.now();
      const response = await request(`${node.url}/healthz`, { dispatcher: agent });
      await response.body.text();
      if (response.statusCode !== 200) throw new Error(`GET /healthz: status ${response.statusCode}`);
      times.push(performance.now() - sentAt);
      await sleep(20);
    }
    const pinged = streams.filter((stream) => stream.pings > 0 && !stream.closed).length;
    const figure = (q) => percentile(times, q).toFixed(2);
    console.log(`${name}: ${count} streams, heartbeat ${heartbeatMs} ms; GET /healthz ×${times.length}: p50 ${figure(0.5)}, p99 ${figure(0.99)}, p99.9 ${figure(0.999)}, max ${Math.max(...times).toFixed(2)} ms; ${pinged}/${count} streams pinged`);
  } finally {
    await closeSockets(sockets);
    await node.stop();
  }
}

try {
  for (let index = 0; index < turns; index++) for (const name of Object.keys(builds).sort((a, b) => (index % 2 === 0 ? a.localeCompare(b) : b.localeCompare(a)))) await turn(name);
} finally {
  await agent.close();
  await closeHubClients();
  await selfProcesses.stopAll();
  if (builds.base) await builds.base.stopAll();
}
process.exit(0);
