// npm run bench: one run starts a mock upstream, Sluice and a hand-written relay (each its own
// process, so CPU and memory are measured per process) and drives the same load through each
// and straight to the upstream. It reports ratios against the hand relay; absolute times on a
// shared machine are noisy. BENCH_QUICK=1 makes a short run. Results go to stdout and
// docs/benchmarks.md. The cluster measures (push fan-out over three nodes, resumable streams with
// Redis-backed logs) need Redis and PostgreSQL (BENCH_REDIS_URL, BENCH_POSTGRES_URL; by default
// the machine's own); they take a key prefix and a schema of their own and delete both afterwards.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Agent, request } from 'undici';

const root = new URL('..', import.meta.url).pathname;
const quick = process.env.BENCH_QUICK === '1';
const plan = {
  latencyRequests: quick ? 60 : 300,
  cpuStreams: quick ? 500 : 2000,
  concurrency: 64,
  openStreams: quick ? 300 : 2000,
  nonStreamRequests: quick ? 1000 : 4000,
  rounds: quick ? 1 : 3,
  idleConnections: quick ? 1000 : 5000,
  fanOutConnections: quick ? 1000 : 5000,
  fanOutRounds: quick ? 5 : 20,
};
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const postgresUrl = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
// Heartbeat interval of the processes that hold idle hub connections; the hold lasts one interval
// and a bit, so every connection has had a ping written to it when memory is read.
const hubHeartbeatMs = 5000;
const clockTicks = 100; // getconf CLK_TCK on Linux
// One key for every hop: Sluice authenticates it as its admin key (SLUICE_ADMIN_KEY, in a SQLite
// store, with a usage row per request as in production), the hand relay forwards it as is, and
// the mock upstream checks it.
const key = `sk-sluice-bench0000000-${'B'.repeat(43)}`;
const children = [];

process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function startScript(script, env) {
  const child = fork(join(root, 'bench', script), [], { execArgv: ['--expose-gc'], env: { ...process.env, BENCH_KEY: key, ...env }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once('message', ({ port }) => resolve({ child, url: `http://127.0.0.1:${port}` }));
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
}

/**
 * Starts Sluice from dist/. By default a single node on a SQLite file of its own; `storeUrl` puts
 * its store elsewhere, and `cluster` ({ nodeId, keyPrefix }) makes it a cluster node on redisUrl.
 */
async function startSluice(upstreamUrl, { heartbeatMs = 15000, storeUrl, cluster, retentionMs } = {}) {
  const directory = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  const config = join(directory, 'sluice.yaml');
  writeFileSync(
    config,
    [
      `server: { port: 0, heartbeatMs: ${heartbeatMs}, drainTimeoutMs: 1000 }`,
      // warn: one log line per request at info would measure pino, not the relay.
      'log: { level: warn }',
      'auth: { mode: keys }',
      `store: { url: "${storeUrl ?? `sqlite:${join(directory, 'sluice.db')}`}" }`,
      ...(cluster ? [`cluster: { redisUrl: "${redisUrl}", nodeId: ${cluster.nodeId}, keyPrefix: "${cluster.keyPrefix}" }`] : []),
      ...(retentionMs ? [`generations: { retentionMs: ${retentionMs} }`] : []),
      'providers:',
      `  up: { type: openai, baseUrl: "${upstreamUrl}/v1", apiKey: ${key}, maxConnections: 4096 }`,
      'models:',
      '  bench-model: { provider: up }',
      '  slow: { provider: up }',
    ].join('\n'),
  );
  return startScript('sluice-server.mjs', { SLUICE_CONFIG: config, SLUICE_ADMIN_KEY: key });
}

/** Asks a relay process for its memory after a forced GC. */
function memoryOf(child) {
  return new Promise((resolve) => {
    const onMessage = (message) => {
      if (!message.memory) return;
      child.off('message', onMessage);
      resolve(message.memory);
    };
    child.on('message', onMessage);
    child.send('memory');
  });
}

function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks; // utime + stime
}

const agent = new Agent({ connections: 4096, keepAliveTimeout: 60_000, pipelining: 1 });
const chatBody = (model, stream) => JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'Benchmark me.' }] });

const nativeChatBody = (model) => JSON.stringify({ model, message: 'Benchmark me.' });

/**
 * One request; checks the answer is complete so a broken relay cannot look fast. `native` sends
 * it to Sluice's own POST /api/chat as SSE (a resumable generation) instead of the OpenAI route.
 */
async function chat(baseUrl, { stream = true, model = 'bench-model', native = false } = {}) {
  const started = performance.now();
  const response = await request(`${baseUrl}${native ? '/api/chat' : '/v1/chat/completions'}`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...(native ? { accept: 'text/event-stream' } : {}) },
    body: native ? nativeChatBody(model) : chatBody(model, stream),
  });
  let firstByteAt;
  let text = '';
  for await (const chunk of response.body) {
    firstByteAt ??= performance.now();
    text += chunk.toString();
  }
  const endedAt = performance.now();
  if (response.statusCode !== 200) throw new Error(`${baseUrl}: status ${response.statusCode}: ${text.slice(0, 200)}`);
  const ended = native ? text.includes('event: done') : !stream || text.includes('data: [DONE]');
  if (!ended || !text.includes('token199 ')) throw new Error(`${baseUrl}: incomplete answer`);
  return { firstByteMs: firstByteAt - started, totalMs: endedAt - started };
}

function percentile(values, fraction) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}

async function latency(baseUrl) {
  for (let index = 0; index < 30; index++) await chat(baseUrl);
  const totals = [];
  const firsts = [];
  for (let index = 0; index < plan.latencyRequests; index++) {
    const { firstByteMs, totalMs } = await chat(baseUrl);
    totals.push(totalMs);
    firsts.push(firstByteMs);
  }
  return { p50: percentile(totals, 0.5), p99: percentile(totals, 0.99), firstP50: percentile(firsts, 0.5) };
}

async function load(baseUrl, total, options) {
  let started = 0;
  const worker = async () => {
    while (started < total) {
      started++;
      await chat(baseUrl, options);
    }
  };
  await Promise.all(Array.from({ length: plan.concurrency }, worker));
}

async function cpuPer1000(baseUrl, pid, total, options) {
  await load(baseUrl, Math.min(500, total), options); // warm up the JIT
  const before = cpuSeconds(pid);
  await load(baseUrl, total, options);
  return ((cpuSeconds(pid) - before) / total) * 1000;
}

/**
 * CPU per 1000 for two processes (`targets`: name → started process), measured in alternating
 * rounds (the first first, then the second first) and reduced to the median per name, so a burst
 * of load from elsewhere on a shared machine skews one round of one side rather than the whole
 * comparison.
 */
async function alternating(targets, total, options) {
  const entries = Object.entries(targets);
  const samples = Object.fromEntries(entries.map(([name]) => [name, []]));
  for (let round = 0; round < plan.rounds; round++) {
    const order = round % 2 === 0 ? entries : [...entries].reverse();
    for (const [name, target] of order) samples[name].push(await cpuPer1000(target.url, target.child.pid, total, options));
  }
  return Object.fromEntries(entries.map(([name]) => [name, percentile(samples[name], 0.5)]));
}

/** Opens `count` slow streams, waits until each has its first content, measures RSS growth. */
async function memoryPerStream(baseUrl, child) {
  await sleep(500);
  const before = await memoryOf(child);
  const controllers = [];
  const opened = [];
  for (let index = 0; index < plan.openStreams; index++) {
    const controller = new AbortController();
    controllers.push(controller);
    opened.push(
      new Promise((resolve, reject) => {
        request(`${baseUrl}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: agent,
          signal: controller.signal,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: chatBody('slow', true),
        }).then(({ body }) => {
          let seen = '';
          body.on('data', (chunk) => {
            seen += chunk;
            if (seen.includes('first ')) resolve();
          });
          body.on('error', () => {});
        }, reject);
      }),
    );
    if (index % 200 === 199) await sleep(20);
  }
  await Promise.all(opened);
  await sleep(1500);
  const after = await memoryOf(child);
  const perStream = { rss: (after.rss - before.rss) / plan.openStreams, heap: (after.heap - before.heap) / plan.openStreams };
  for (const controller of controllers) controller.abort();
  await sleep(1500);
  return perStream;
}

/**
 * Opens one idle SSE stream on a raw socket (lighter for the driver than an HTTP client), writing
 * the request by hand, and resolves once a 200 head has arrived. Afterwards it counts the `: ping`
 * lines and `event: bench` events that reach it, and keeps when (performance.now()) the last
 * event arrived. Every socket goes into `sockets`, for cleanup.
 */
function openIdleStream(port, path, sockets) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    const stream = { socket, pings: 0, pushes: 0, lastPushAt: undefined, closed: false };
    let head = '';
    let partial = '';
    const timer = setTimeout(() => fail(new Error(`${path}: no response head within 10 s`)), 10_000);
    const fail = (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.setEncoding('latin1');
    socket.on('error', fail);
    socket.once('close', () => {
      stream.closed = true;
      fail(new Error(`${path}: closed before its head`));
    });
    socket.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\naccept: text/event-stream\r\nauthorization: Bearer ${key}\r\n\r\n`);
    socket.on('data', (text) => {
      if (head !== undefined) {
        head += text;
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        if (!head.startsWith('HTTP/1.1 200 ')) return fail(new Error(`${path}: ${head.slice(0, head.indexOf('\r\n'))}`));
        text = head.slice(end + 4);
        head = undefined;
        clearTimeout(timer);
        resolve(stream);
      }
      // Whole lines only: the chunked framing (size lines) sits on lines of its own.
      const arrivedAt = performance.now();
      const lines = (partial + text).split('\n');
      partial = lines.pop();
      for (const line of lines) {
        if (line === ': ping') stream.pings++;
        else if (line === 'event: bench') {
          stream.pushes++;
          stream.lastPushAt = arrivedAt;
        }
      }
    });
  });
}

/** Opens `count` idle streams, 50 handshakes in flight at a time (the listen backlog is finite). */
async function openIdleStreams(port, path, count, sockets) {
  const streams = [];
  let started = 0;
  const worker = async () => {
    while (started < count) {
      started++;
      streams.push(await openIdleStream(port, path, sockets));
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
  return streams;
}

/** Destroys every socket and waits (at most 10 s) until each has closed. */
async function closeSockets(sockets) {
  const closed = sockets.map((socket) => (socket.closed ? undefined : new Promise((resolve) => socket.once('close', resolve))));
  for (const socket of sockets) socket.destroy();
  await Promise.race([Promise.all(closed), sleep(10_000)]);
  sockets.length = 0;
}

async function until(condition, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (!condition() && performance.now() < deadline) await sleep(50);
}

/**
 * Opens plan.idleConnections idle SSE streams on a fresh process, holds them past one heartbeat
 * and measures its memory growth after forced GCs; then, when `push` is given, broadcasts one
 * event and checks that every stream gets it.
 */
async function memoryPerIdleConnection(target, path, push) {
  const port = Number(new URL(target.url).port);
  const sockets = [];
  try {
    await openIdleStreams(port, path, 200, sockets); // warm up the JIT and the hub
    await closeSockets(sockets);
    await sleep(500);
    const before = await memoryOf(target.child);
    const streams = await openIdleStreams(port, path, plan.idleConnections, sockets);
    await sleep(hubHeartbeatMs + 1000);
    const after = await memoryOf(target.child);
    const count = plan.idleConnections;
    const result = {
      rss: (after.rss - before.rss) / count,
      heap: (after.heap - before.heap) / count,
      open: streams.filter((stream) => !stream.closed).length,
      pinged: streams.filter((stream) => stream.pings > 0).length,
    };
    if (push) {
      result.reached = await push();
      await until(() => streams.every((stream) => stream.pushes > 0), 10_000);
      result.received = streams.filter((stream) => stream.pushes === 1 && !stream.closed).length;
    }
    return result;
  } finally {
    await closeSockets(sockets);
  }
}

/** One broadcast through Sluice's POST /api/push; returns how many connections it reached. */
async function pushToAll(baseUrl, note = 'idle connection check') {
  const response = await request(`${baseUrl}/api/push`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ to: { all: true }, event: 'bench', data: { note } }),
  });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`POST /api/push: status ${response.statusCode}: ${text.slice(0, 200)}`);
  return JSON.parse(text).connections;
}

/** SIGTERM (bench/sluice-server.mjs then leaves the cluster as `sluice serve` does), SIGKILL after 10 s. */
async function stopProcess(child) {
  const running = () => child.exitCode === null && child.signalCode === null;
  if (!running()) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000)]);
  if (running()) child.kill('SIGKILL');
}

/** Whether Redis and PostgreSQL both answer within a second; if not, says which did not. */
async function clusterServicesAnswer() {
  const redis = new Redis(redisUrl, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 1000 });
  client.on('error', () => {});
  try {
    await redis.connect().catch((error) => Promise.reject(new Error(`Redis at ${redisUrl}: ${error.message}`)));
    await client.connect().catch((error) => Promise.reject(new Error(`PostgreSQL at ${postgresUrl}: ${error.message}`)));
    return true;
  } catch (error) {
    console.warn(`Skipping the cluster measures: ${error.message}`);
    return false;
  } finally {
    redis.disconnect();
    await client.end().catch(() => {});
  }
}

/** Deletes every Redis key under `keyPrefix` (SCAN + DEL) and drops `schema`; reports, never throws. */
async function deleteClusterState(keyPrefix, schema) {
  const redis = new Redis(redisUrl, { connectTimeout: 2000, commandTimeout: 5000, maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  try {
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (found.length > 0) await redis.del(...found);
    } while (cursor !== '0');
  } catch (error) {
    console.error(`Could not delete the Redis keys under ${keyPrefix}: ${error.message}`);
  } finally {
    redis.disconnect();
  }
  const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 2000, query_timeout: 30_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } catch (error) {
    console.error(`Could not drop the PostgreSQL schema ${schema}: ${error.message}`);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Spreads plan.fanOutConnections idle hub streams evenly over `nodes`, then sends two warm-up
 * pushes and plan.fanOutRounds measured ones to `{ all: true }` through the first node, one at a
 * time. A round's figure is from sending the POST until the last stream has the event; it counts
 * only when every stream got it (within 10 s).
 */
async function pushFanOut(nodes) {
  const sockets = [];
  const count = plan.fanOutConnections;
  try {
    const streams = [];
    for (const [index, node] of nodes.entries()) {
      const share = Math.floor(count / nodes.length) + (index < count % nodes.length ? 1 : 0);
      streams.push(...(await openIdleStreams(Number(new URL(node.url).port), '/api/events', share, sockets)));
    }
    const rounds = [];
    const warmUpRounds = 2;
    for (let round = 0; round < warmUpRounds + plan.fanOutRounds; round++) {
      const sentAt = performance.now();
      const reached = await pushToAll(nodes[0].url, `fan-out round ${round}`);
      await until(() => streams.every((stream) => stream.pushes > round), 10_000);
      const received = streams.filter((stream) => stream.pushes === round + 1 && !stream.closed).length;
      const lastAt = streams.reduce((latest, stream) => Math.max(latest, stream.lastPushAt ?? Infinity), -Infinity);
      if (round >= warmUpRounds) rounds.push({ reached, received, lastMs: received === count ? lastAt - sentAt : undefined });
      await sleep(200);
    }
    const times = rounds.filter((round) => round.lastMs !== undefined).map((round) => round.lastMs);
    return {
      p50: times.length > 0 ? percentile(times, 0.5) : undefined,
      p99: times.length > 0 ? percentile(times, 0.99) : undefined,
      complete: times.length,
      reachedAll: rounds.filter((round) => round.reached === count).length,
      reached: rounds.map((round) => round.reached),
      received: rounds.map((round) => round.received),
    };
  } finally {
    await closeSockets(sockets);
  }
}

/**
 * The cluster measures, on processes of their own sharing one Redis key prefix and one PostgreSQL
 * schema, both made for this run and deleted at its end whatever happens: CPU per 1000 native
 * streams on a cluster node against the same Sluice as a single node, then push fan-out over three
 * nodes. Undefined when Redis or PostgreSQL does not answer.
 */
async function clusterMeasures(upstreamUrl) {
  if (!(await clusterServicesAnswer())) return undefined;
  const suffix = randomBytes(4).toString('hex');
  const keyPrefix = `sluice-bench-${suffix}:`;
  const schema = `sluice_bench_${suffix}`;
  const storeUrl = `${postgresUrl}?schema=${schema}`;
  const started = [];
  // One at a time: the first start migrates the schema and installs the bench key for all.
  const start = async (options) => {
    const sluice = await startSluice(upstreamUrl, { storeUrl, ...options });
    started.push(sluice);
    return sluice;
  };
  try {
    // Finished generations are kept 15 s rather than 5 min on both, so the logs of thousands of
    // benchmark streams do not pile up in the shared Redis.
    const single = await start({ retentionMs: 15_000 });
    const cluster = await start({ retentionMs: 15_000, cluster: { nodeId: 'bench-cpu', keyPrefix } });
    const cpu = await alternating({ single, cluster }, plan.cpuStreams, { native: true });
    await Promise.all([stopProcess(single.child), stopProcess(cluster.child)]);
    console.log('cluster stream CPU done');
    const nodes = [];
    for (const nodeId of ['bench-node-1', 'bench-node-2', 'bench-node-3']) nodes.push(await start({ cluster: { nodeId, keyPrefix } }));
    const fanOut = await pushFanOut(nodes);
    console.log('push fan-out done');
    return { cpu, fanOut };
  } finally {
    await Promise.all(started.map((sluice) => stopProcess(sluice.child)));
    await deleteClusterState(keyPrefix, schema);
  }
}

const format = (value, digits = 2) => (value === undefined ? '–' : value.toFixed(digits));
const verdict = (ok) => (ok ? 'PASS' : 'FAIL');

async function main() {
  const upstream = await startScript('mock-upstream.mjs', {});
  const relay = await startScript('hand-relay.mjs', { UPSTREAM_URL: `${upstream.url}/v1` });
  const sluice = await startSluice(upstream.url);
  const targets = { direct: upstream.url, relay: relay.url, sluice: sluice.url };
  console.log(`upstream ${upstream.url}, hand relay ${relay.url}, sluice ${sluice.url}${quick ? ' (quick run)' : ''}`);

  // Memory first, on fresh processes after a short warm-up, so earlier load phases do not leave
  // heap and RSS behind that a forced GC then returns and makes the difference meaningless.
  await load(relay.url, 200, {});
  await load(sluice.url, 200, {});
  const memory = { relay: await memoryPerStream(relay.url, relay.child), sluice: await memoryPerStream(sluice.url, sluice.child) };
  console.log('memory done');
  const latencies = {};
  for (const [name, url] of Object.entries(targets)) latencies[name] = await latency(url);
  console.log('latency done');
  const streamCpu = await alternating({ relay, sluice }, plan.cpuStreams, {});
  console.log('stream CPU done');
  const nonStreamCpu = await alternating({ relay, sluice }, plan.nonStreamRequests, { stream: false });
  console.log('non-stream CPU done');
  // Idle hub connections last, on processes of their own: fresh (as for the stream memory), with
  // heartbeats every hubHeartbeatMs, and leaving the processes of the other measures as they were.
  const hubRelay = await startScript('hand-relay.mjs', { UPSTREAM_URL: `${upstream.url}/v1`, HEARTBEAT_MS: String(hubHeartbeatMs) });
  const hubSluice = await startSluice(upstream.url, { heartbeatMs: hubHeartbeatMs });
  const idle = {
    relay: await memoryPerIdleConnection(hubRelay, '/events'),
    sluice: await memoryPerIdleConnection(hubSluice, '/api/events', () => pushToAll(hubSluice.url)),
  };
  hubRelay.child.kill();
  hubSluice.child.kill();
  console.log('idle connection memory done');
  const clustered = await clusterMeasures(upstream.url);

  const added = { relay: latencies.relay.p50 - latencies.direct.p50, sluice: latencies.sluice.p50 - latencies.direct.p50 };
  const added99 = { relay: latencies.relay.p99 - latencies.direct.p99, sluice: latencies.sluice.p99 - latencies.direct.p99 };
  const rows = [
    ['time to last byte p50 / p99 (ms), 200-chunk stream', `${format(latencies.direct.p50)} / ${format(latencies.direct.p99)}`, `${format(latencies.relay.p50)} / ${format(latencies.relay.p99)}`, `${format(latencies.sluice.p50)} / ${format(latencies.sluice.p99)}`, ''],
    ['added latency p50 / p99 (ms)', '–', `${format(added.relay)} / ${format(added99.relay)}`, `${format(added.sluice)} / ${format(added99.sluice)}`, `p50 ≤ 0.5 ms: ${verdict(added.sluice <= 0.5)}`],
    ['time to first byte p50 (ms)', format(latencies.direct.firstP50), format(latencies.relay.firstP50), format(latencies.sluice.firstP50), ''],
    ['CPU s per 1000 streams (64 clients)', '–', format(streamCpu.relay, 3), format(streamCpu.sluice, 3), `ratio ${format(streamCpu.sluice / streamCpu.relay)} ≤ 1: ${verdict(streamCpu.sluice <= streamCpu.relay)}`],
    [`memory per open stream: JS heap + buffers after GC (kB, ${plan.openStreams} open)`, '–', format(memory.relay.heap / 1024, 1), format(memory.sluice.heap / 1024, 1), `ratio ${format(memory.sluice.heap / memory.relay.heap)} ≤ 0.5: ${verdict(memory.sluice.heap <= memory.relay.heap / 2)}`],
    ['… the same as RSS growth (kB)', '–', format(memory.relay.rss / 1024, 1), format(memory.sluice.rss / 1024, 1), `ratio ${format(memory.sluice.rss / memory.relay.rss)}`],
    ['CPU s per 1000 non-streamed requests', '–', format(nonStreamCpu.relay, 3), format(nonStreamCpu.sluice, 3), `ratio ${format(nonStreamCpu.sluice / nonStreamCpu.relay)} ≤ 0.5: ${verdict(nonStreamCpu.sluice <= nonStreamCpu.relay / 2)}`],
    [`memory per idle hub connection: JS heap + buffers after GC (kB, ${plan.idleConnections} open)`, '–', format(idle.relay.heap / 1024, 1), format(idle.sluice.heap / 1024, 1), `ratio ${format(idle.sluice.heap / idle.relay.heap)}`],
    ['… the same as RSS growth (kB)', '–', format(idle.relay.rss / 1024, 1), format(idle.sluice.rss / 1024, 1), `ratio ${format(idle.sluice.rss / idle.relay.rss)}`],
    ['idle hub connections open / pinged / reached by one push', '–', `${idle.relay.open} / ${idle.relay.pinged} / –`, `${idle.sluice.open} / ${idle.sluice.pinged} / ${idle.sluice.reached} (${idle.sluice.received} received)`, `all ${plan.idleConnections}: ${verdict([idle.relay.open, idle.relay.pinged, idle.sluice.open, idle.sluice.pinged, idle.sluice.reached, idle.sluice.received].every((value) => value === plan.idleConnections))}`],
  ];
  if (clustered) {
    const { cpu, fanOut } = clustered;
    const rounds = plan.fanOutRounds;
    const received = Math.min(...fanOut.received);
    rows.push(
      [`push fan-out over 3 cluster nodes, last arrival p50 / p99 (ms, ${plan.fanOutConnections} connections, ${rounds} rounds)`, '–', '–', `${format(fanOut.p50)} / ${format(fanOut.p99)}`, `p99 ≤ 100 ms: ${verdict(fanOut.complete === rounds && fanOut.p99 <= 100)}`],
      ['… reached (POST answer) / received, worst round', '–', '–', `${Math.min(...fanOut.reached)} / ${received}`, `all ${plan.fanOutConnections} in all ${rounds} rounds: ${verdict(fanOut.reachedAll === rounds && fanOut.complete === rounds)}`],
      ['CPU s per 1000 native streams (POST /api/chat), single node / cluster (Redis-backed logs)', '–', '–', `${format(cpu.single, 3)} / ${format(cpu.cluster, 3)}`, `ratio ${format(cpu.cluster / cpu.single)} ≤ 1.5: ${verdict(cpu.cluster <= cpu.single * 1.5)}`],
    );
  } else {
    rows.push(['push fan-out over 3 cluster nodes; CPU of native streams, cluster / single node', '–', '–', 'not run: Redis or PostgreSQL did not answer', '']);
  }
  const table = ['| measure | direct | hand relay | Sluice | target |', '|---|---|---|---|---|', ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
  console.log(`\n${machine}\n\n${table}\n`);

  const page = `# Benchmarks

\`npm run bench\` (\`BENCH_QUICK=1\` for a short run). Last run: ${machine}${quick ? ', quick run' : ''}.

${table}

## Method

One run starts three processes: a mock OpenAI-compatible upstream (\`bench/mock-upstream.mjs\`,
200 \`chat.completion.chunk\` events per stream written as fast as the socket takes them), Sluice
from \`dist/\` (\`log.level: warn\`, so the per-request log line is not what is measured), and the
hand-written relay (\`bench/hand-relay.mjs\`: node:http plus global \`fetch\`, each upstream chunk
written straight through, no parsing or accounting). "Direct" is the client talking to the
upstream itself. The client (undici, in the driver process) reads and checks every answer.

- **Latency**: one client, ${plan.latencyRequests} sequential streams after 30 of warm-up; time to last byte.
  Added latency is relay minus direct at the same percentile; at p99 that is the difference of two
  tails measured in separate series, noise on a shared machine, and can come out negative.
- **CPU per 1000 streams**: ${plan.cpuStreams} streams from 64 concurrent clients after 500 of warm-up; user +
  system CPU of the relay process from \`/proc/<pid>/stat\`; ${plan.rounds} rounds alternating which relay goes
  first, median reported.
- **Memory per open stream**: ${plan.openStreams} streams held open at once (the upstream sends one chunk a
  second). Both relays run with \`--expose-gc\`; over IPC the driver has each collect garbage
  and report its memory before the streams open and once every stream has its first content. The
  difference divided by the count, as RSS and as JS heap + external buffers.
- **Non-streamed CPU**: ${plan.nonStreamRequests} \`stream: false\` requests, 64 concurrent, rounds as above.
- **Memory per idle hub connection**: last, on a fresh Sluice and a fresh hand relay of their own
  (\`server.heartbeatMs: ${hubHeartbeatMs}\`), ${plan.idleConnections} \`GET /api/events\` streams held open at once with the bench
  key, against the hand relay's \`GET /events\` (SSE headers, the open responses in a Set, one
  timer writing \`: ping\` to each every ${hubHeartbeatMs / 1000} s: the least a hand-written hub needs). The driver
  opens them on raw sockets (the request written by hand, 50 handshakes in flight), after 200
  opened and closed as warm-up; memory is read as for open streams, before they open and once they
  have been held for one heartbeat and a second. Then one \`POST /api/push\` to \`{ all: true }\`
  must answer that it reached every connection, and every stream must receive the event once.
- **Cluster runs**: on Sluices of their own in cluster mode, sharing the machine's Redis under a key
  prefix made for the run and one PostgreSQL schema made for the run (store and keys); both are
  deleted at the end (SCAN + DEL on the prefix, \`DROP SCHEMA … CASCADE\`), and the nodes leave
  on SIGTERM as \`sluice serve\` does.
- **Push fan-out**: three nodes, ${plan.fanOutConnections} idle \`GET /api/events\` streams spread evenly over them and
  opened as for idle hub connections. After two warm-up rounds, ${plan.fanOutRounds} rounds, one at a time, of
  one \`POST /api/push\` to \`{ all: true }\` through node 1. A round's figure is the time from
  sending the POST until the last of the streams has the event (the driver stamps each socket's
  receipt with \`performance.now()\`, so the figure includes the driver reading every socket); p50
  and p99 over the rounds (${plan.fanOutRounds} rounds: p99 is the slowest). Every round's answer must count every
  connection, and every stream must receive every push once within 10 s.
- **CPU per 1000 native streams, cluster against single node**: the same Sluice twice, once with
  \`cluster:\` and once without (memory generation registry), both on the PostgreSQL store and with
  \`generations.retentionMs: 15000\` so the logs of thousands of finished streams do not pile up in
  Redis. ${plan.cpuStreams} \`POST /api/chat\` streams (\`Accept: text/event-stream\`: the native API, whose
  generations are the ones mirrored to Redis), counted and alternated as for CPU per 1000 streams.
  Only the Sluice process's CPU is counted, not Redis's.

Sluice does more per request than the hand relay: it authenticates an API key (\`auth.mode: keys\`,
the key record cached for 5 s), checks the key's and the user's limits, validates the body,
resolves the model, parses every upstream event, rewrites \`model\`, counts usage, enforces four
timeouts, records metrics, holds the stream's events for slow-client handling, and writes one usage
row per request to SQLite (batched). The machine is shared and noisy: read the ratios from one run,
not the absolute times.
`;
  writeFileSync(join(root, 'docs/benchmarks.md'), page);
  await agent.close();
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
