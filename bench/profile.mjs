// Where Sluice's CPU and memory per stream go. Runs Sluice from dist/ (production defaults, as in
// npm run bench) under `--cpu-prof` against the bench's mock upstream, drives a streaming load
// through it, and prints the top self-time functions and the self time per area (parsing,
// encoding, GC, http, auth, usage, logging, …). With PROFILE_HEAP=1 it also holds slow streams
// open and diffs two heap snapshots (before / with them), printing what each held stream keeps,
// by constructor. With PROFILE_HUB=1 it does the same for idle hub connections (`GET /api/events`)
// on Sluice and on the hand-written SSE endpoint (bench/hand-relay.mjs `/events`), side by side.
//
//   npm run build && node bench/profile.mjs
//   PROFILE_STREAMS=3000 PROFILE_NON_STREAMED=1 PROFILE_HEAP=1 PROFILE_HELD=1000 node bench/profile.mjs
//   PROFILE_CONCURRENCY=1 node bench/profile.mjs   (one request at a time: what added latency at C=1 is made of)
//   PROFILE_STORE=postgres node bench/profile.mjs   (usage rows in PostgreSQL, as a cluster node keeps them)
//   PROFILE_CLUSTER=1 PROFILE_NATIVE=1 node bench/profile.mjs   (a cluster node serving POST /api/chat, as the bench's cluster CPU measure)
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { chat as sendChat, messages } from './chat-client.mjs';
import { closeSockets, deleteClusterState, openIdleStreams, postgresUrl, redisUrl } from './hub-clients.mjs';
import { benchKey as key, startScript, startSluice, stopAll } from './processes.mjs';

const streams = Number(process.env.PROFILE_STREAMS ?? 3000);
const nonStreamed = process.env.PROFILE_NON_STREAMED === '1';
const heldCount = Number(process.env.PROFILE_HELD ?? 1000);
const top = Number(process.env.PROFILE_TOP ?? 30);
const concurrency = Number(process.env.PROFILE_CONCURRENCY ?? 64);
const clustered = process.env.PROFILE_CLUSTER === '1';
const native = process.env.PROFILE_NATIVE === '1';
const inPostgres = clustered || process.env.PROFILE_STORE === 'postgres';
const agent = new Agent({ keepAliveTimeout: 60_000, pipelining: 1 });

/** The area a profile frame belongs to, from its script URL and function name. */
function areaOf({ url, functionName }) {
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(program)') return 'V8/native (unattributed)';
  if (url === '' && ['parse', 'JSONParse'].includes(functionName)) return 'parsing';
  if (url === '' && ['stringify', 'JSONStringify'].includes(functionName)) return 'encoding';
  const rules = [
    ['parsing', ['/dist/providers/', '/eventsource-parser/']],
    ['encoding', ['/dist/sse/', '/dist/http/sse/', '/dist/relay/encoders/']],
    ['auth', ['/dist/auth/', '/jose/']],
    ['usage, limits, store', ['/dist/store/', '/dist/limits/', '/dist/relay/usage-writer', '/kysely/', '/better-sqlite3/']],
    ['logging', ['/pino', '/sonic-boom/', '/thread-stream/', '/dist/observability/logger']],
    ['metrics', ['/prom-client/', '/dist/observability/metrics', '/dist/observability/trac']],
    ['validation (zod)', ['/zod/']],
    ['relay (generation, timeouts)', ['/dist/relay/']],
    ['routing, admission', ['/dist/routing/', '/dist/http/']],
    ['http (node:http, net, streams, undici)', ['node:_http', 'node:http', 'node:net', 'node:internal/stream', 'node:internal/http', 'node:stream', '/undici/', 'node:internal/deps/undici', 'node:internal/net', 'node:internal/timers', 'node:events', 'node:internal/process/task_queues', 'node:internal/async_hooks', 'wasm://']],
  ];
  for (const [area, needles] of rules) if (needles.some((needle) => url.includes(needle))) return area;
  if (url.includes('/dist/')) return 'other Sluice';
  if (url.startsWith('node:')) return 'other Node internals';
  return url === '' ? 'V8 builtins' : 'other dependencies';
}

/** Self time (ms) per profile node, from a .cpuprofile's samples and timeDeltas. */
function selfTimes(profile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  for (let index = 0; index < profile.samples.length; index++) {
    const node = byId.get(profile.samples[index]);
    const deltaMs = (profile.timeDeltas[index] ?? 0) / 1000;
    self.set(node, (self.get(node) ?? 0) + deltaMs);
  }
  return self;
}

function summariseCpu(profile, requests) {
  const self = selfTimes(profile);
  const byFunction = new Map();
  const byArea = new Map();
  let busy = 0;
  for (const [node, ms] of self) {
    const area = areaOf(node.callFrame);
    if (area === 'idle') continue;
    busy += ms;
    byArea.set(area, (byArea.get(area) ?? 0) + ms);
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/')}:${lineNumber + 1}` : '(native)';
    const name = `${functionName || '(anonymous)'} ${where}`;
    const entry = byFunction.get(name) ?? { ms: 0, area };
    entry.ms += ms;
    byFunction.set(name, entry);
  }
  const percent = (ms) => `${((ms / busy) * 100).toFixed(1).padStart(5)}%`;
  console.log(`\nbusy CPU ${(busy / 1000).toFixed(2)} s for ${requests} requests (${((busy / requests) * 1000 / 1000).toFixed(3)} s per 1000)\n`);
  console.log('self time by area:');
  for (const [area, ms] of [...byArea].sort((a, b) => b[1] - a[1])) console.log(`  ${percent(ms)}  ${(ms / 1000).toFixed(2).padStart(6)} s  ${area}`);
  console.log(`\ntop ${top} functions by self time:`);
  for (const [name, { ms, area }] of [...byFunction].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) console.log(`  ${percent(ms)}  ${name}  [${area}]`);
}

const chat = (baseUrl, stream) => sendChat(baseUrl, { dispatcher: agent, stream, native });

async function load(baseUrl, total, stream) {
  let started = 0;
  const worker = async () => {
    while (started++ < total) await chat(baseUrl, stream);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Self size and count per "type:name" of a .heapsnapshot (V8's flat node array). */
function heapByConstructor(path) {
  const snapshot = JSON.parse(readFileSync(path, 'utf8'));
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((field) => fields.indexOf(field));
  const totals = new Map();
  for (let index = 0; index < snapshot.nodes.length; index += fields.length) {
    const type = types[snapshot.nodes[index + typeAt]];
    const name = type === 'object' || type === 'closure' || type === 'native' ? snapshot.strings[snapshot.nodes[index + nameAt]] : `(${type})`;
    const key = `${name}`;
    const entry = totals.get(key) ?? { bytes: 0, count: 0 };
    entry.bytes += snapshot.nodes[index + sizeAt];
    entry.count++;
    totals.set(key, entry);
  }
  return totals;
}

function snapshot(child, path) {
  return new Promise((resolve) => {
    const onMessage = (message) => {
      if (message.heapSnapshot !== path) return;
      child.off('message', onMessage);
      resolve(path);
    };
    child.on('message', onMessage);
    child.send({ heapSnapshot: path });
  });
}

async function heapPerHeldStream(upstreamUrl, directory) {
  const sluice = await startSluice(upstreamUrl);
  const controllers = [];
  try {
    await load(sluice.url, 200, true);
    const before = heapByConstructor(await snapshot(sluice.child, join(directory, 'before.heapsnapshot')));
    await Promise.all(
      Array.from({ length: heldCount }, async () => {
        const controller = new AbortController();
        controllers.push(controller);
        const response = await request(`${sluice.url}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: agent,
          signal: controller.signal,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ model: 'slow', stream: true, messages }),
        });
        response.body.on('error', () => {});
        await new Promise((resolve) => response.body.once('data', resolve));
      }),
    );
    await sleep(1500);
    const after = heapByConstructor(await snapshot(sluice.child, join(directory, 'after.heapsnapshot')));
    const rows = [];
    let total = 0;
    for (const [name, { bytes, count }] of after) {
      const base = before.get(name) ?? { bytes: 0, count: 0 };
      const grown = bytes - base.bytes;
      total += grown;
      if (grown > 0) rows.push({ name, bytesPerStream: grown / heldCount, countPerStream: (count - base.count) / heldCount });
    }
    console.log(`\nJS heap kept per held slow stream (${heldCount} held): ${(total / heldCount / 1024).toFixed(1)} kB; largest by constructor:`);
    for (const row of rows.sort((a, b) => b.bytesPerStream - a.bytesPerStream).slice(0, top)) {
      console.log(`  ${(row.bytesPerStream / 1024).toFixed(2).padStart(6)} kB  ${row.countPerStream.toFixed(1).padStart(5)} objects  ${row.name}`);
    }
  } finally {
    for (const controller of controllers) controller.abort();
    await sluice.stop();
  }
}

/** What `count` new heap objects by constructor come to per connection between two snapshots. */
function perConnection(before, after, count) {
  const rows = new Map();
  for (const [name, { bytes, count: objects }] of after) {
    const base = before.get(name) ?? { bytes: 0, count: 0 };
    rows.set(name, { bytes: (bytes - base.bytes) / count, objects: (objects - base.count) / count });
  }
  return rows;
}

/** The JS heap each idle hub connection keeps, by constructor, on Sluice and on the hand-written endpoint. */
async function heapPerHubConnection(upstreamUrl, directory) {
  const heartbeatMs = 5000;
  const results = {};
  const targets = {
    hand: () => startScript('hand-relay.mjs', { UPSTREAM_URL: `${upstreamUrl}/v1`, HEARTBEAT_MS: String(heartbeatMs) }),
    sluice: () => startSluice(upstreamUrl, { heartbeatMs }),
  };
  for (const [name, start] of Object.entries(targets)) {
    const target = await start();
    const sockets = [];
    const path = name === 'hand' ? '/events' : '/api/events';
    try {
      const port = Number(new URL(target.url).port);
      await openIdleStreams(port, path, 200, sockets);
      await closeSockets(sockets);
      await sleep(500);
      const before = heapByConstructor(await snapshot(target.child, join(directory, `${name}-before.heapsnapshot`)));
      await openIdleStreams(port, path, heldCount, sockets);
      await sleep(heartbeatMs + 1000);
      const after = heapByConstructor(await snapshot(target.child, join(directory, `${name}-after.heapsnapshot`)));
      results[name] = perConnection(before, after, heldCount);
    } finally {
      await closeSockets(sockets);
      await target.stop();
    }
  }
  const total = (rows) => [...rows.values()].reduce((sum, row) => sum + row.bytes, 0);
  console.log(`\nJS heap kept per idle hub connection (${heldCount} open): Sluice ${(total(results.sluice) / 1024).toFixed(2)} kB, hand-written ${(total(results.hand) / 1024).toFixed(2)} kB; by constructor (bytes and objects per connection, Sluice / hand):`);
  const names = [...new Set([...results.sluice.keys(), ...results.hand.keys()])];
  const of = (rows, name) => rows.get(name) ?? { bytes: 0, objects: 0 };
  names.sort((a, b) => of(results.sluice, b).bytes - of(results.hand, b).bytes - (of(results.sluice, a).bytes - of(results.hand, a).bytes));
  for (const name of names.slice(0, top)) {
    const [mine, hand] = [of(results.sluice, name), of(results.hand, name)];
    console.log(`  ${mine.bytes.toFixed(0).padStart(6)} / ${hand.bytes.toFixed(0).padStart(6)} B  ${mine.objects.toFixed(1).padStart(5)} / ${hand.objects.toFixed(1).padStart(5)}  ${name}`);
  }
}

async function main() {
  const directory = mkdtempSync(join(tmpdir(), 'sluice-profile-'));
  const upstream = await startScript('mock-upstream.mjs');
  if (process.env.PROFILE_HUB === '1') {
    await heapPerHubConnection(upstream.url, directory);
    return;
  }
  // A schema and a key prefix of this run's own, deleted at its end (as the bench's cluster measure does).
  const suffix = Math.random().toString(16).slice(2, 10);
  const keyPrefix = `sluice-profile-${suffix}:`;
  const schema = `sluice_profile_${suffix}`;
  const storeUrl = inPostgres ? `${postgresUrl}?schema=${schema}` : undefined;
  const cluster = clustered ? { redisUrl, nodeId: 'profile', keyPrefix } : undefined;
  try {
    const sluice = await startSluice(upstream.url, { storeUrl, cluster, retentionMs: 15_000, execArgv: ['--cpu-prof', '--cpu-prof-dir', directory] });
    await load(sluice.url, 300, !nonStreamed); // warm-up, inside the profile but small beside the load
    await load(sluice.url, streams, !nonStreamed);
    await sluice.stop(); // SIGTERM: bench/sluice-server.mjs shuts down and exits, and the profile is written
  } finally {
    if (inPostgres) await deleteClusterState(keyPrefix, schema);
  }
  const file = readdirSync(directory).find((name) => name.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile in ${directory}`);
  console.log(`profile: ${join(directory, file)} (open it in Chrome DevTools or speedscope for the call tree)`);
  summariseCpu(JSON.parse(readFileSync(join(directory, file), 'utf8')), streams + 300);
  if (process.env.PROFILE_HEAP === '1') await heapPerHeldStream(upstream.url, directory);
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    await agent.close();
  });
