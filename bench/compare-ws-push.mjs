// Compares WebSocket push fan-out between two builds in one run: one Sluice of this checkout and
// one of another (a copy of the repository at an earlier commit, built), each holding `count`
// GET /api/ws connections of one user, in alternating turns so that load from elsewhere on the
// machine hits both alike. Each turn broadcasts `rounds` pushes one after another (the next once
// every socket has the previous one) and reports the node's CPU per push, read from /proc; the
// driver's own CPU is not counted (docs/decisions/0028-websocket-push-bytes.md).
//
//   git worktree add /tmp/sluice-base <commit> && (cd /tmp/sluice-base && npm run build)
//   COMPARE_BASE=/tmp/sluice-base COMPARE_TURNS=3 COMPARE_ROUNDS=50 node bench/compare-ws-push.mjs
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { pushToAll, until } from './hub-clients.mjs';
import * as selfProcesses from './processes.mjs';

const baseRoot = process.env.COMPARE_BASE;
if (!baseRoot) throw new Error('COMPARE_BASE: the path of the other checkout (built) is required');
const builds = { base: await import(`${baseRoot}/bench/processes.mjs`), this: selfProcesses };
const turns = Number(process.env.COMPARE_TURNS ?? 3);
const rounds = Number(process.env.COMPARE_ROUNDS ?? 50);
const count = Number(process.env.COMPARE_CONNECTIONS ?? 2000);
// A notification of about 600 bytes of UTF-8, a third of it multi-byte, as a push might carry.
const note = `${'Build finished: 142 tests passed. '.repeat(8)}${'构建完成，全部测试通过。'.repeat(8)}🙂`;
const results = { base: [], this: [] };

/** Opens one hub WebSocket and counts the push frames it receives. */
function openSocket(url, sockets) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${selfProcesses.benchKey}` }, perMessageDeflate: false });
    const client = { pushes: 0 };
    sockets.push(socket);
    socket.on('message', () => client.pushes++);
    socket.once('open', () => resolve(client));
    socket.once('error', reject);
  });
}

/** Opens `count` sockets, 50 handshakes in flight at a time. */
async function openSockets(url, sockets) {
  const clients = [];
  let started = 0;
  const worker = async () => {
    while (started < count) {
      started++;
      clients.push(await openSocket(url, sockets));
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
  return clients;
}

/** A fresh Sluice of `build` with `count` sockets; `rounds` broadcasts; the node's CPU ms per push. */
async function turn(name) {
  const processes = builds[name];
  const node = await processes.startSluice('http://127.0.0.1:9', { openFiles: count + 1000 });
  const sockets = [];
  try {
    const clients = await openSockets(`${node.url.replace('http', 'ws')}/api/ws`, sockets);
    // Warm up the JIT on the push path before measuring.
    for (let index = 1; index <= 5; index++) {
      await pushToAll(node.url, note);
      await until(() => clients.every((client) => client.pushes >= index), 10_000);
    }
    await sleep(200);
    const before = processes.cpuSeconds(node.pids());
    for (let index = 1; index <= rounds; index++) {
      const reached = await pushToAll(node.url, note);
      if (reached !== count) throw new Error(`${name}: a push reached ${reached} of ${count} connections`);
      await until(() => clients.every((client) => client.pushes >= 5 + index), 10_000);
    }
    const cpuMs = ((processes.cpuSeconds(node.pids()) - before) / rounds) * 1000;
    const whole = clients.filter((client) => client.pushes === 5 + rounds).length;
    results[name].push(cpuMs);
    console.log(`${name}: node CPU ${cpuMs.toFixed(1)} ms per push to ${count} WebSockets (${whole}/${count} got all ${rounds})`);
  } finally {
    for (const socket of sockets) socket.terminate();
    await node.stop();
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
try {
  for (let index = 0; index < turns; index++) for (const name of index % 2 === 0 ? ['base', 'this'] : ['this', 'base']) await turn(name);
  for (const name of ['base', 'this']) console.log(`${name.padEnd(4)} median of ${turns} turns: node CPU ${median(results[name]).toFixed(1)} ms per push (turns ${results[name].map((value) => value.toFixed(1)).join(' ')})`);
} finally {
  await selfProcesses.stopAll();
  await builds.base.stopAll();
}
process.exit(0);
