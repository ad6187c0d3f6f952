// Clients for the hub measures: idle SSE streams on raw sockets (lighter for the driver than an
// HTTP client), memory per idle connection, push fan-out over cluster nodes, and the Redis and
// PostgreSQL housekeeping of the cluster measures (a key prefix and a schema per run, deleted after).
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Agent, request } from 'undici';
import { cpuSeconds, benchKey as key } from './processes.mjs';
import { heapTotalGrowth, percentile, rssGrowth, youngGeneration } from './report.mjs';

export const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const postgresUrl = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const agent = new Agent({ keepAliveTimeout: 60_000, pipelining: 1 });

export async function until(condition, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (!condition() && performance.now() < deadline) await sleep(50);
}

export async function closeHubClients() {
  await agent.close();
}

// One read buffer for every stream: the driver reads thousands of sockets, and `onread` hands each
// read to a callback in this buffer (no Buffer per read, no Readable stream in between), so that
// the driver's own cost per arrival stays small next to what it measures
// (docs/decisions/0024-push-fan-out.md).
const readBuffer = Buffer.allocUnsafe(64 * 1024);

/**
 * Opens one idle SSE stream on a raw socket (lighter for the driver than an HTTP client), writing
 * the request by hand, and resolves once a 200 head has arrived. Afterwards it counts the `: ping`
 * lines and `event: bench` events that reach it, and keeps when (performance.now()) the last
 * event arrived. Every socket goes into `sockets`, for cleanup.
 */
function openIdleStream(port, path, sockets) {
  return new Promise((resolve, reject) => {
    const stream = { socket: undefined, pings: 0, pushes: 0, lastPushAt: undefined, closed: false };
    let head = '';
    let partial = '';
    const onRead = (size, buffer) => {
      const arrivedAt = performance.now();
      let text = buffer.toString('latin1', 0, size);
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
      const lines = (partial + text).split('\n');
      partial = lines.pop();
      for (const line of lines) {
        if (line === ': ping') stream.pings++;
        else if (line === 'event: bench') {
          stream.pushes++;
          stream.lastPushAt = arrivedAt;
        }
      }
    };
    const socket = connect({ port, host: '127.0.0.1', onread: { buffer: readBuffer, callback: onRead } });
    stream.socket = socket;
    sockets.push(socket);
    const timer = setTimeout(() => fail(new Error(`${path}: no response head within 10 s`)), 10_000);
    const fail = (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.on('error', fail);
    socket.once('close', () => {
      stream.closed = true;
      fail(new Error(`${path}: closed before its head`));
    });
    socket.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\naccept: text/event-stream\r\nauthorization: Bearer ${key}\r\n\r\n`);
  });
}

/** Opens `count` idle streams, 50 handshakes in flight at a time (the listen backlog is finite). */
export async function openIdleStreams(port, path, count, sockets) {
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
export async function closeSockets(sockets) {
  const closed = sockets.map((socket) => (socket.closed ? undefined : new Promise((resolve) => socket.once('close', resolve))));
  for (const socket of sockets) socket.destroy();
  await Promise.race([Promise.all(closed), sleep(10_000)]);
  sockets.length = 0;
}

/**
 * Opens `count` idle SSE streams on a fresh process, holds them past one heartbeat (`heartbeatMs`)
 * and measures its memory growth after forced GCs; then, when `push` is given, broadcasts one
 * event and checks that every stream gets it.
 * RSS growth is counted without the young generation's (rssGrowth).
 */
export async function memoryPerIdleConnection(target, path, { count, heartbeatMs, push }) {
  const port = Number(new URL(target.url).port);
  const sockets = [];
  try {
    await openIdleStreams(port, path, 200, sockets); // warm up the JIT and the hub
    await closeSockets(sockets);
    await sleep(500);
    const before = await target.memory();
    const streams = await openIdleStreams(port, path, count, sockets);
    await sleep(heartbeatMs + 1000);
    const after = await target.memory();
    const result = {
      rss: rssGrowth(before, after) / count,
      heap: (after.heap - before.heap) / count,
      heapTotal: (heapTotalGrowth(before, after) ?? Number.NaN) / count,
      open: streams.filter((stream) => !stream.closed).length,
      pinged: streams.filter((stream) => stream.pings > 0).length,
      newSpace: youngGeneration(before, after),
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
export async function pushToAll(baseUrl, note = 'idle connection check') {
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

/** Whether Redis and PostgreSQL both answer within a second; if not, says which did not. */
export async function clusterServicesAnswer() {
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
export async function deleteClusterState(keyPrefix, schema) {
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
 * Spreads `count` idle hub streams evenly over `nodes`, then sends two warm-up
 * pushes and `rounds` measured ones to `{ all: true }` through the first node, one at a
 * time. A round's figure is from sending the POST until the last stream has the event; it counts
 * only when every stream got it (within 10 s). Also the three nodes' CPU per measured push (ms,
 * from /proc, the 200 ms pause after each push included).
 */
export async function pushFanOut(nodes, { count, rounds: measuredRounds }) {
  const sockets = [];
  try {
    const streams = [];
    for (const [index, node] of nodes.entries()) {
      const share = Math.floor(count / nodes.length) + (index < count % nodes.length ? 1 : 0);
      streams.push(...(await openIdleStreams(Number(new URL(node.url).port), '/api/events', share, sockets)));
    }
    const rounds = [];
    const warmUpRounds = 2;
    const pids = nodes.flatMap((node) => node.pids());
    let cpuBefore;
    for (let round = 0; round < warmUpRounds + measuredRounds; round++) {
      if (round === warmUpRounds) cpuBefore = cpuSeconds(pids);
      const sentAt = performance.now();
      const reached = await pushToAll(nodes[0].url, `fan-out round ${round}`);
      await until(() => streams.every((stream) => stream.pushes > round), 10_000);
      const received = streams.filter((stream) => stream.pushes === round + 1 && !stream.closed).length;
      const lastAt = streams.reduce((latest, stream) => Math.max(latest, stream.lastPushAt ?? Infinity), -Infinity);
      if (round >= warmUpRounds) rounds.push({ reached, received, lastMs: received === count ? lastAt - sentAt : undefined });
      await sleep(200);
    }
    const nodeCpuMsPerPush = measuredRounds > 0 ? ((cpuSeconds(pids) - cpuBefore) * 1000) / measuredRounds : undefined;
    const times = rounds.filter((round) => round.lastMs !== undefined).map((round) => round.lastMs);
    return {
      nodeCpuMsPerPush,
      p50: times.length > 0 ? percentile(times, 0.5) : undefined,
      p99: times.length > 0 ? percentile(times, 0.99) : undefined,
      max: times.length > 0 ? Math.max(...times) : undefined,
      complete: times.length,
      reachedAll: rounds.filter((round) => round.reached === count).length,
      reached: rounds.map((round) => round.reached),
      received: rounds.map((round) => round.received),
      // Each round's figure in the order sent, so that a slow p99 can be placed in the run.
      lastMs: rounds.map((round) => round.lastMs),
    };
  } finally {
    await closeSockets(sockets);
  }
}

