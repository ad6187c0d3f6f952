// npm run bench: measures Sluice side by side with its references in one run, on one machine. A
// mock upstream, nginx (when installed), the lean Node relay, the fetch hand relay and Sluice each
// run as a process of their own, so CPU and memory are read per process; the driver (this process)
// loads them alike and checks every answer whole, so a broken relay cannot look fast. Results are
// reported as ratios against the lean relay, with PASS/FAIL against the targets of issue 15
// (docs/benchmarks.md explains each measure). The table replaces the marked section of
// docs/benchmarks.md; the raw figures go to bench/results/<time>.json.
//
// BENCH_QUICK=1: every measure with small counts (about a minute or two). BENCH_ONLY=cpu,latency:
// only the named measures (names below). BENCH_SOAK_S: soak length in seconds (default 900).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { chat as sendChat, messages } from './chat-client.mjs';
import { clusterServicesAnswer, closeHubClients, deleteClusterState, memoryPerIdleConnection, postgresUrl, pushFanOut, pushToAll, redisUrl } from './hub-clients.mjs';
import { benchKey as key, cpuSeconds, rssBytes, startNginx, startScript, startSluice, stopAll } from './processes.mjs';
import { fitSlope, heapTotalGrowth, markdownTable, percentile, perRoundDifference, replaceResults, rssGrowth, youngGeneration } from './report.mjs';

const root = new URL('..', import.meta.url).pathname;
const quick = process.env.BENCH_QUICK === '1';
const measureNames = ['cpu', 'latency', 'memory', 'native', 'hold', 'idle', 'cluster', 'soak'];
const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',').map((name) => name.trim()) : measureNames;
for (const name of only) if (!measureNames.includes(name)) throw new Error(`BENCH_ONLY: no measure "${name}"; the measures are ${measureNames.join(', ')}`);
const soakSeconds = Number(process.env.BENCH_SOAK_S ?? (quick ? 20 : 900));
const plan = {
  concurrency: 64,
  cpuStreams: quick ? 300 : 2000,
  nonStreamRequests: quick ? 600 : 4000,
  warmUp: quick ? 100 : 500,
  rounds: quick ? 1 : 3,
  // The CPU measures' rounds: five, so that the per-round ratio's median is not one round's; each
  // on processes started for it and first loaded with freshWarmUp streams and non-streamed requests.
  freshWarmUp: quick ? 300 : 3000,
  cpuRounds: quick ? 1 : 5,
  clusterRounds: quick ? 1 : 7,
  // The native measure's rounds, on one process: a round's ratio moved from 0.55× to 1.20× between
  // rounds of one run (2026-12-05), so the figure is the median of nine per-round ratios.
  nativeRounds: quick ? 1 : 9,
  pacedStreams: quick ? 300 : 1200,
  pacedConcurrency: 300,
  // Added latency at C=1: 20 rounds of 100 streams per target (about 10 s in all), after 5000
  // each. The figure is the steady state a running gateway is in: V8 goes on compiling Sluice's
  // per-request functions with TurboFan until about the 5000th request (`--trace-opt`). After 100,
  // two lone `BENCH_ONLY=latency` runs read +0.50 and +0.54 ms on a machine where the full run,
  // whose relays come warm from the CPU rounds, read +0.20 (decision 0040).
  latencyRounds: quick ? 2 : 20,
  latencyPerRound: quick ? 20 : 100,
  latencyWarmUp: quick ? 20 : 5000,
  heldStreams: quick ? 300 : 2000,
  // Rounds of the held-stream measure, each on fresh processes: one reading of RSS moves with where
  // V8's and the allocator's pages fall (the same build read 0.96×, 1.11× and 1.43× the lean relay
  // in three runs of one round, its JS heap 1.08× each time).
  memoryRounds: quick ? 1 : 3,
  holdSeconds: quick ? 3 : 10,
  bigHold: quick ? 1000 : 9000,
  bigHoldTicks: quick ? 20 : 60,
  idleConnections: quick ? 1000 : 5000,
  idleRounds: quick ? 1 : 3,
  fanOutConnections: quick ? 1000 : 5000,
  // A p99 needs 100 rounds: of 20 it is their maximum, which one slow round decides (decision 0041).
  fanOutRounds: quick ? 5 : 100,
  soakSeconds,
  soakRatePerSecond: 200,
  // Half the run, at most eight minutes (450 s of the default 900 s): at 200 streams a second
  // Sluice's RSS grows for five to six minutes (V8 sizing its heap, then memory outside the JS
  // heap) and stays flat from there; a 1200 s soak sampled after full GCs rose from 145 to 163 MB
  // by 6 minutes and stayed within 162.5–167.3 MB to the end (docs/benchmarks.md). The slope from
  // 60 s is reported too.
  soakWarmUpSeconds: Math.min(480, soakSeconds / 2),
  soakEarlySeconds: Math.min(60, soakSeconds / 3),
  soakSampleSeconds: quick ? 1 : 3,
  // How often Sluice is asked for its memory after full GCs (bench/memory-probe.mjs): what a
  // leak would grow, without the garbage V8 has not collected yet.
  soakGcSampleSeconds: quick ? 4 : 10,
};
// Heartbeat interval of the processes that hold idle hub connections; the hold lasts one interval
// and a bit, so every connection has had a ping written to it when memory is read.
const hubHeartbeatMs = 5000;
// The soak's RSS is "flat" when its slope after warm-up stays under this (≈ 15 MB an hour).
const flatSlopeKbPerMinute = 256;

// Two client pools: one for load (64 clients), one without a connection cap for held streams.
const agent = new Agent({ connections: 4096, keepAliveTimeout: 60_000, pipelining: 1 });
const holdAgent = new Agent({ keepAliveTimeout: 60_000, pipelining: 1 });

/** Tokens of a paced stream (the mock's model `paced`: one every 20 ms). */
const pacedTokens = 50;

/** One request through the load agent; checks the answer is complete (bench/chat-client.mjs). */
const chat = (baseUrl, options = {}) => sendChat(baseUrl, { dispatcher: agent, pacedTokens, ...options });

/** `total` requests from `options.concurrency` (default plan.concurrency) clients. */
async function load(baseUrl, total, options = {}) {
  let started = 0;
  const worker = async () => {
    while (started < total) {
      started++;
      await chat(baseUrl, options);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? plan.concurrency }, worker));
}

async function cpuPer1000(target, total, options) {
  await load(target.url, Math.min(plan.warmUp, total), options); // warm up the JIT
  const before = cpuSeconds(target.pids());
  await load(target.url, total, options);
  return ((cpuSeconds(target.pids()) - before) / total) * 1000;
}

/**
 * CPU s per 1000 requests for each entry ([name, target, options]), in `rounds` rounds that rotate
 * which goes first: each name's figure per round, in round order. A burst of load from elsewhere on
 * a shared machine skews one round of one side rather than the whole comparison.
 */
async function sampleRounds(entries, total, rounds) {
  const samples = Object.fromEntries(entries.map(([name]) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    const order = [...entries.slice(round % entries.length), ...entries.slice(0, round % entries.length)];
    for (const [name, target, options] of order) samples[name].push(await cpuPer1000(target, total, options));
  }
  return samples;
}

/**
 * The median of as[i] / bs[i] (figures of one round each), with the lowest and highest and the
 * number of rounds. A ratio of medians can pair figures from different rounds, so a machine that
 * slows or speeds up during the run moves it; a per-round ratio compares figures taken minutes
 * apart at most. On the EPYC machine the single node's own figure moved from 0.555 to 1.270 s per
 * 1000 streams between partial runs of one build, and the ratio of medians from 0.84× to 1.83×
 * (docs/benchmarks.md).
 */
function perRoundRatio(as, bs) {
  const ratios = as.map((value, round) => value / bs[round]);
  return { ratio: percentile(ratios, 0.5), lowest: Math.min(...ratios), highest: Math.max(...ratios), rounds: ratios.length };
}

/** Each name's median over its per-round figures, and Sluice's over the lean relay's as perRoundRatio gives it. */
function againstLean(samples) {
  const medians = Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, percentile(values, 0.5)]));
  return { ...medians, paired: perRoundRatio(samples.sluice, samples.lean), samples };
}

/**
 * Runs `rounds` rounds of `measureRound(targets, round)`, each on processes of its own: `start(round)`
 * starts them (rotating which starts first) and they are stopped after the round, except the last
 * round's, which `keepLast` keeps running for the measures that follow. Two processes of one build,
 * started one after the other and loaded alike, differ in CPU per request by 8–22 % for as long as
 * they run, one way or the other (A/A runs, ADR 0021): a round's ratio pairs two draws of that, so
 * the median over rounds needs a fresh pair each round, not the same pair measured again.
 */
async function freshRounds(rounds, start, measureRound, { keepLast = false } = {}) {
  for (let round = 0; round < rounds; round++) {
    const targets = await start(round);
    try {
      await measureRound(targets, round);
    } finally {
      if (!(keepLast && round === rounds - 1)) await Promise.all(targets.map((target) => target.stop()));
    }
  }
}

/** `entries` ([name, target, options]) rotated by `round`: who goes first moves each round. */
function rotated(entries, round) {
  const start = round % entries.length;
  return [...entries.slice(start), ...entries.slice(0, start)];
}

/**
 * Loads freshly started targets until V8 has optimised what the load runs: plan.freshWarmUp
 * streams and as many non-streamed requests (`entries` [name, target, options] with the options
 * of the measure that follows), at the measures' concurrency. Sluice's TurboFan compiles on worker
 * threads whose CPU counts as the process's, for several thousand requests after a start.
 */
async function warmUpFresh(entries) {
  for (const [, target, options] of entries) {
    await load(target.url, plan.freshWarmUp, options);
    if (!options.native && !options.paced) await load(target.url, plan.freshWarmUp, { ...options, stream: false });
  }
}

/**
 * Opens one slow stream (the upstream sends a chunk a second) and records when each `tick` chunk
 * arrives. With `ticks`, the upstream ends it after that many; `whole` then says whether every
 * chunk, the finish and [DONE] arrived. `first` resolves once its first content is in (or it failed).
 */
function openSlowStream(baseUrl, ticks) {
  const controller = new AbortController();
  const stream = { controller, arrivals: [], text: '', ok: false, ended: false, error: undefined };
  let markFirst;
  stream.first = new Promise((resolve) => (markFirst = resolve));
  const body = JSON.stringify({ model: 'slow', stream: true, messages, ...(ticks ? { max_tokens: ticks } : {}) });
  stream.done = request(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: holdAgent,
    signal: controller.signal,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body,
  })
    .then(async ({ statusCode, body: answer }) => {
      for await (const chunk of answer) {
        const text = chunk.toString();
        stream.text += text;
        if (!stream.ok && stream.text.includes('first ')) {
          stream.ok = statusCode === 200;
          markFirst();
        } else if (text.includes('tick ')) stream.arrivals.push(performance.now());
      }
      stream.ended = true;
      if (statusCode !== 200) throw new Error(`status ${statusCode}: ${stream.text.slice(0, 200)}`);
    })
    .catch((error) => {
      if (!controller.signal.aborted) stream.error = error;
    })
    .finally(markFirst);
  stream.whole = () => stream.ended && stream.text.split('tick ').length - 1 === ticks && stream.text.includes('"finish_reason":"length"') && stream.text.includes('data: [DONE]');
  return stream;
}

/** Opens `count` slow streams, `inFlight` waiting for their first content at a time. */
async function openSlowStreams(baseUrl, count, { ticks, inFlight = 100 } = {}) {
  const streams = [];
  const worker = async () => {
    while (streams.length < count) {
      const stream = openSlowStream(baseUrl, ticks);
      streams.push(stream);
      await stream.first;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return streams;
}

/** Gaps (ms) between consecutive tick arrivals of each stream, both after `since`. */
function chunkGaps(streams, since) {
  const gaps = [];
  for (const { arrivals } of streams) {
    const recent = arrivals.filter((at) => at >= since);
    for (let index = 1; index < recent.length; index++) gaps.push(recent[index] - recent[index - 1]);
  }
  return gaps;
}

/**
 * Warms a fresh process up for a memory measure: a few sequential requests and slow streams, so
 * the code is compiled, without the burst of 64 concurrent streams that would leave its heap grown
 * (and the held streams' memory hidden in pages it already has).
 */
async function warmUp(baseUrl) {
  for (let index = 0; index < 20; index++) await chat(baseUrl);
  const streams = await openSlowStreams(baseUrl, 20, { inFlight: 1 });
  for (const stream of streams) stream.controller.abort();
  await Promise.all(streams.map((stream) => stream.done));
  await sleep(500);
}

/**
 * On a fresh target: warm up, read memory (after a forced GC where it is a Node process), hold
 * plan.heldStreams slow streams open, read memory again; then hold them plan.holdSeconds more and
 * take the gaps between their chunks (1 s cadence upstream).
 */
async function heldStreams(target) {
  await warmUp(target.url);
  const before = await target.memory();
  const opening = performance.now();
  const streams = await openSlowStreams(target.url, plan.heldStreams);
  const openedInS = (performance.now() - opening) / 1000;
  await sleep(1500);
  const after = await target.memory();
  const since = performance.now();
  await sleep(plan.holdSeconds * 1000);
  const gaps = chunkGaps(streams, since);
  const open = streams.filter((stream) => stream.ok && !stream.ended && !stream.error).length;
  for (const stream of streams) stream.controller.abort();
  await Promise.all(streams.map((stream) => stream.done));
  const count = plan.heldStreams;
  return {
    count,
    open,
    openedInS,
    rssPerStream: rssGrowth(before, after) / count,
    heapPerStream: after.heap === undefined ? undefined : (after.heap - before.heap) / count,
    // The V8 heap's committed pages (report.mjs heapTotalGrowth).
    heapTotalPerStream: (heapTotalGrowth(before, after) ?? Number.NaN) / count,
    gapP50: percentile(gaps, 0.5),
    gapP99: percentile(gaps, 0.99),
    gaps: gaps.length,
    newSpace: youngGeneration(before, after),
  };
}

/**
 * Time to last byte of sequential 200-chunk streams: plan.latencyRounds rounds, each sending
 * plan.latencyPerRound streams to every target one after the other (the order rotated), after
 * plan.latencyWarmUp each. Per target: the p50 over all rounds. Sluice's added latency over the
 * lean relay's is the median over rounds of (Sluice p50 − lean p50) of that round, with its range:
 * one round lasts under a second per target, so a round's two figures are taken seconds apart,
 * while the state of the machine (where the kernel places the three processes of a request on two
 * cores) moves the figures by 0.1–0.4 ms between runs minutes apart (ADR 0027).
 */
async function latency(targets) {
  const samples = Object.fromEntries(targets.map((target) => [target.name, { totals: [], firsts: [], rounds: [] }]));
  for (const target of targets) for (let index = 0; index < plan.latencyWarmUp; index++) await chat(target.url);
  for (let round = 0; round < plan.latencyRounds; round++) {
    for (const target of rotated(targets, round)) {
      const totals = [];
      for (let index = 0; index < plan.latencyPerRound; index++) {
        const { firstByteMs, totalMs } = await chat(target.url);
        totals.push(totalMs);
        samples[target.name].firsts.push(firstByteMs);
      }
      samples[target.name].totals.push(...totals);
      samples[target.name].rounds.push(percentile(totals, 0.5));
    }
  }
  const results = Object.fromEntries(Object.entries(samples).map(([name, { totals, firsts, rounds }]) => [name, { p50: percentile(totals, 0.5), p99: percentile(totals, 0.99), firstP50: percentile(firsts, 0.5), rounds }]));
  if (results.sluice && results.lean) results.sluiceOverLean = perRoundDifference(results.sluice.rounds, results.lean.rounds);
  return results;
}

/**
 * plan.bigHold slow streams held on one Sluice at once (each holds two sockets there), every one
 * of them ended by the upstream after plan.bigHoldTicks chunks and checked whole.
 */
async function holdMany(upstreamUrl) {
  const openFiles = 20_000;
  const sluice = await startSluice(upstreamUrl, { openFiles });
  try {
    await warmUp(sluice.url);
    const before = await sluice.memory();
    const started = performance.now();
    const streams = await openSlowStreams(sluice.url, plan.bigHold, { ticks: plan.bigHoldTicks, inFlight: 200 });
    const openedInS = (performance.now() - started) / 1000;
    const open = streams.filter((stream) => stream.ok && !stream.ended).length;
    const during = await sluice.memory();
    await Promise.all(streams.map((stream) => stream.done));
    const whole = streams.filter((stream) => stream.whole()).length;
    const errors = [...new Set(streams.filter((stream) => stream.error).map((stream) => stream.error.message))].slice(0, 3);
    return { count: plan.bigHold, openAtPeak: open, whole, openedInS, rssPerStream: rssGrowth(before, during) / Math.max(open, 1), rssMb: during.rss / 2 ** 20, errors };
  } finally {
    await sluice.stop();
  }
}

/**
 * plan.soakSeconds of 200 streams a second on a fresh Sluice: most read at full speed, one in
 * twenty pauses 2 s after its first chunk (a slow reader), one in twenty disconnects after its
 * first chunk. Every plan.soakGcSampleSeconds Sluice reports its RSS and JS heap after full GCs
 * (bench/memory-probe.mjs): the slope of that RSS after plan.soakWarmUpSeconds, with its standard
 * error, is the figure, the heap's slope is shown beside it. RSS as the OS sees it without a forced
 * GC is sampled every plan.soakSampleSeconds and its slopes after the warm-up and from
 * plan.soakEarlySeconds up to then are reported too: they follow V8's sawtooth (tens of MB between
 * collections), which a five-minute slope cannot tell from growth.
 */
async function soak(upstreamUrl) {
  const sluice = await startSluice(upstreamUrl);
  const counts = { started: 0, whole: 0, slow: 0, disconnected: 0, failed: 0 };
  const failures = {};
  const fail = (kind, reason) => {
    counts.failed++;
    const key = `${kind}: ${reason}`.slice(0, 160);
    failures[key] = (failures[key] ?? 0) + 1;
  };
  const samples = [];
  const gcSamples = [];
  const pending = new Set();
  const one = async (kind) => {
    const controller = new AbortController();
    try {
      const response = await request(`${sluice.url}/v1/chat/completions`, {
        method: 'POST',
        dispatcher: holdAgent,
        signal: controller.signal,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: 'bench-model', stream: true, messages }),
      });
      let text = '';
      let chunks = 0;
      for await (const chunk of response.body) {
        text += chunk.toString();
        if (++chunks > 1) continue;
        if (kind === 'disconnect') {
          controller.abort();
          counts.disconnected++;
          return;
        }
        if (kind === 'slow') await sleep(2000);
      }
      if (response.statusCode === 200 && text.includes('token199 ') && text.includes('data: [DONE]')) {
        counts.whole++;
        if (kind === 'slow') counts.slow++;
      } else fail(kind, `status ${response.statusCode}, ${text.length} bytes, ends ${JSON.stringify(text.slice(-80))}`);
    } catch (error) {
      if (!controller.signal.aborted) fail(kind, error.message);
    }
  };
  try {
    await load(sluice.url, 200, {});
    const started = performance.now();
    const end = started + plan.soakSeconds * 1000;
    let nextSample = started;
    let nextGcSample = started + plan.soakGcSampleSeconds * 1000;
    let gcSampling;
    const batch = plan.soakRatePerSecond / 20; // every 50 ms
    for (let tick = 0; performance.now() < end; tick++) {
      for (let index = 0; index < batch; index++) {
        const serial = counts.started++;
        const kind = serial % 20 === 7 ? 'slow' : serial % 20 === 13 ? 'disconnect' : 'full';
        const promise = one(kind).finally(() => pending.delete(promise));
        pending.add(promise);
      }
      if (performance.now() >= nextSample) {
        samples.push({ atS: (performance.now() - started) / 1000, rss: rssBytes(sluice.pids()) });
        nextSample += plan.soakSampleSeconds * 1000;
      }
      // Asked without waiting: the load goes on while Sluice collects and answers (about 1 s).
      if (gcSampling === undefined && performance.now() >= nextGcSample) {
        const atS = (performance.now() - started) / 1000;
        gcSampling = sluice.memory().then(({ rss, heap, heapTotal }) => {
          gcSamples.push({ atS, rss, heap, heapTotal });
          gcSampling = undefined;
        });
        nextGcSample += plan.soakGcSampleSeconds * 1000;
      }
      await sleep(Math.max(0, started + (tick + 1) * 50 - performance.now()));
    }
    await Promise.all(pending);
    await gcSampling;
    const after = (list) => list.filter((sample) => sample.atS >= plan.soakWarmUpSeconds);
    const warming = samples.filter((sample) => sample.atS >= plan.soakEarlySeconds && sample.atS < plan.soakWarmUpSeconds);
    /** Slope and standard error of `field` over `list`, in kB per minute. */
    const perMinute = (list, field) => {
      const fit = fitSlope(list.map((sample) => ({ x: sample.atS, y: sample[field] })));
      const kbPerMinute = (bytesPerSecond) => (bytesPerSecond === undefined ? undefined : (bytesPerSecond * 60) / 1024);
      return fit === undefined ? undefined : { slope: kbPerMinute(fit.slope), error: kbPerMinute(fit.error) };
    };
    const elapsedS = (performance.now() - started) / 1000;
    const gcAfter = after(gcSamples);
    return {
      seconds: plan.soakSeconds,
      ratePerSecond: counts.started / elapsedS,
      ...counts,
      failures,
      gcRss: perMinute(gcAfter, 'rss'),
      gcHeap: perMinute(gcAfter, 'heap'),
      gcRssMb: gcAfter.length > 0 ? [Math.min(...gcAfter.map((sample) => sample.rss)) / 2 ** 20, Math.max(...gcAfter.map((sample) => sample.rss)) / 2 ** 20] : undefined,
      rawRss: perMinute(after(samples), 'rss'),
      warmingRawRss: perMinute(warming, 'rss'),
      samples,
      gcSamples,
    };
  } finally {
    await sluice.stop();
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
  const { cpu, paced } = await clusterCpuMeasures(upstreamUrl);
  console.log('cluster stream CPU done');
  const fanOut = await inClusterState(async (start) => {
    const nodes = [];
    for (const nodeId of ['bench-node-1', 'bench-node-2', 'bench-node-3']) nodes.push(await start(upstreamUrl, { cluster: { nodeId } }));
    return pushFanOut(nodes, { count: plan.fanOutConnections, rounds: plan.fanOutRounds });
  });
  console.log('push fan-out done');
  return { cpu, paced, fanOut };
}

/**
 * Runs `measure` with a Redis key prefix and a PostgreSQL schema of its own, and deletes both
 * after it, with the nodes it started: each cluster measure starts from a Redis and a database
 * without the previous one's keys and rows (thousands of generation logs expiring, an autovacuum
 * of their usage rows), which would otherwise run on the same two cores during it.
 * `measure` gets `start(upstreamUrl, options)`, startSluice on that store and, for
 * `options.cluster` ({ nodeId }), that Redis and key prefix.
 */
async function inClusterState(measure) {
  const suffix = Math.random().toString(16).slice(2, 10);
  const keyPrefix = `sluice-bench-${suffix}:`;
  const schema = `sluice_bench_${suffix}`;
  const storeUrl = `${postgresUrl}?schema=${schema}`;
  const started = [];
  // One at a time: the first start migrates the schema and installs the bench key for all.
  const start = async (upstreamUrl, { cluster, ...options }) => {
    const sluice = await startSluice(upstreamUrl, { storeUrl, ...options, ...(cluster ? { cluster: { redisUrl, keyPrefix, ...cluster } } : {}) });
    started.push(sluice);
    return sluice;
  };
  try {
    return await measure(start);
  } finally {
    await Promise.all(started.map((sluice) => sluice.stop()));
    await deleteClusterState(keyPrefix, schema);
  }
}

/** CPU per 1000 native streams (plain and paced) of a cluster node against a single node's. */
function clusterCpuMeasures(upstreamUrl) {
  return inClusterState(async (start) => {
    // Finished generations are kept 15 s rather than 5 min on both, so the logs of thousands of
    // benchmark streams do not pile up in the shared Redis. More rounds than the others, each on a
    // fresh pair started in alternating order: the cluster node's figure moves by ±20 % between
    // rounds (Redis shares the cores), the single node's with the machine, and each process's by
    // 8–22 % from the next one's (freshRounds).
    const pacedOptions = { native: true, paced: true, concurrency: plan.pacedConcurrency };
    const samples = { cpu: { cluster: [], single: [] }, paced: { cluster: [], single: [] } };
    const pair = async (round) => {
      const starters = [
        async () => ['single', await start(upstreamUrl, { retentionMs: 15_000 })],
        async () => ['cluster', await start(upstreamUrl, { retentionMs: 15_000, cluster: { nodeId: 'bench-cpu' } })],
      ];
      const byName = {};
      for (const startOne of rotated(starters, round)) {
        const [name, sluice] = await startOne();
        byName[name] = { ...sluice, name };
      }
      return [byName.cluster, byName.single];
    };
    await freshRounds(plan.clusterRounds, pair, async (nodes, round) => {
      await warmUpFresh(nodes.map((node) => [node.name, node, { native: true }]));
      for (const node of rotated(nodes, round)) samples.cpu[node.name].push(await cpuPer1000(node, plan.cpuStreams, { native: true }));
      // Streams as a model sends them, a token per read: what cluster.logFlushMs is for (ADR 0030).
      if (round < plan.rounds) for (const node of rotated(nodes, round)) samples.paced[node.name].push(await cpuPer1000(node, plan.pacedStreams, pacedOptions));
    });
    const pairedOf = ({ cluster, single }) => ({ cluster: percentile(cluster, 0.5), single: percentile(single, 0.5), ...perRoundRatio(cluster, single), samples: { cluster, single } });
    return { cpu: pairedOf(samples.cpu), paced: pairedOf(samples.paced) };
  });
}

/** Runs the chosen measures; each failure is recorded and the run goes on. */
async function measure() {
  const results = {};
  const upstream = await startScript('mock-upstream.mjs', {}, { openFiles: 20_000 });
  const upstreamUrl = upstream.url;
  const relayEnv = { UPSTREAM_URL: `${upstreamUrl}/v1` };
  // The references and Sluice: a set per CPU round (startRelays), the last of which latency and
  // native share (sharedTargets; started afresh when cpu is not run).
  let shared;
  const startRelays = async (round = 0) => {
    const starters = [
      () => startNginx(upstreamUrl),
      async () => ({ ...(await startScript('lean-relay.mjs', relayEnv)), name: 'lean' }),
      async () => ({ ...(await startScript('hand-relay.mjs', relayEnv)), name: 'hand' }),
      () => startSluice(upstreamUrl),
    ];
    const started = [];
    for (const startTarget of rotated(starters, round)) started.push(await startTarget());
    const byName = Object.fromEntries(started.filter(Boolean).map((target) => [target.name, target]));
    return { ...byName, relays: ['nginx', 'lean', 'hand', 'sluice'].map((name) => byName[name]).filter(Boolean) };
  };
  const sharedTargets = async (round = 0) => {
    shared ??= await startRelays(round);
    return shared;
  };
  const steps = {
    // Each round on relays started for it (the start order rotated); the last round's stay up for
    // latency and native, which follow, as they did when one set served every measure.
    cpu: async () => {
      const samples = { streams: {}, nonStreamed: {} };
      const record = (kind, name, value) => (samples[kind][name] ??= []).push(value);
      const start = async (round) => {
        const targets = round === plan.cpuRounds - 1 ? await sharedTargets(round) : await startRelays(round);
        return targets.relays;
      };
      await freshRounds(
        plan.cpuRounds,
        start,
        async (relays, round) => {
          await warmUpFresh(relays.map((target) => [target.name, target, {}]));
          for (const target of rotated(relays, round)) record('streams', target.name, await cpuPer1000(target, plan.cpuStreams, {}));
          for (const target of rotated(relays, round)) record('nonStreamed', target.name, await cpuPer1000(target, plan.nonStreamRequests, { stream: false }));
        },
        { keepLast: true },
      );
      return { streams: againstLean(samples.streams), nonStreamed: againstLean(samples.nonStreamed) };
    },
    latency: async () => {
      const { relays } = await sharedTargets();
      return latency([{ name: 'direct', url: upstreamUrl }, ...relays]);
    },
    native: async () => {
      const { sluice } = await sharedTargets();
      const samples = await sampleRounds([['openai', sluice, {}], ['native', sluice, { native: true }]], plan.cpuStreams, plan.nativeRounds);
      return { openai: percentile(samples.openai, 0.5), native: percentile(samples.native, 0.5), ...perRoundRatio(samples.native, samples.openai), samples };
    },
    memory: async () => {
      const starters = Object.entries({
        nginx: () => startNginx(upstreamUrl),
        lean: async () => ({ ...(await startScript('lean-relay.mjs', relayEnv)), name: 'lean' }),
        hand: async () => ({ ...(await startScript('hand-relay.mjs', relayEnv)), name: 'hand' }),
        sluice: () => startSluice(upstreamUrl),
      });
      // Each round on fresh processes, measured one after another in a rotated order.
      const rounds = [];
      for (let round = 0; round < plan.memoryRounds; round++) {
        const held = {};
        for (const [name, startTarget] of rotated(starters, round)) {
          const target = await startTarget();
          if (!target) continue;
          try {
            held[name] = await heldStreams(target);
          } finally {
            await target.stop();
          }
        }
        rounds.push(held);
      }
      return { rounds };
    },
    hold: () => holdMany(upstreamUrl),
    idle: async () => {
      // Fresh processes each round, the first one alternating: one reading of thousands of
      // connections' RSS moves with where the heap's and the allocator's pages happen to fall
      // (one build read 0.62× and 1.08× the hand-written endpoint in two runs).
      const rounds = [];
      for (let round = 0; round < plan.idleRounds; round++) {
        const hubRelay = await startScript('hand-relay.mjs', { ...relayEnv, HEARTBEAT_MS: String(hubHeartbeatMs) });
        const hubSluice = await startSluice(upstreamUrl, { heartbeatMs: hubHeartbeatMs });
        try {
          const options = { count: plan.idleConnections, heartbeatMs: hubHeartbeatMs };
          const hand = () => memoryPerIdleConnection(hubRelay, '/events', options);
          const sluice = () => memoryPerIdleConnection(hubSluice, '/api/events', { ...options, push: () => pushToAll(hubSluice.url) });
          if (round % 2 === 0) rounds.push({ hand: await hand(), sluice: await sluice() });
          else {
            const first = await sluice();
            rounds.push({ hand: await hand(), sluice: first });
          }
        } finally {
          await Promise.all([hubRelay.stop(), hubSluice.stop()]);
        }
      }
      const median = (side, field) => percentile(rounds.map((round) => round[side][field]), 0.5);
      // Every round must have had every connection open, pinged and (Sluice) reached: the fewest.
      const fewest = (side) => Object.fromEntries(['open', 'pinged', 'reached', 'received'].filter((field) => rounds[0][side][field] !== undefined).map((field) => [field, Math.min(...rounds.map((round) => round[side][field]))]));
      return {
        hand: { ...fewest('hand'), rss: median('hand', 'rss'), heap: median('hand', 'heap') },
        sluice: { ...fewest('sluice'), rss: median('sluice', 'rss'), heap: median('sluice', 'heap') },
        paired: perRoundRatio(rounds.map((round) => round.sluice.rss), rounds.map((round) => round.hand.rss)),
        rounds,
      };
    },
    cluster: () => clusterMeasures(upstreamUrl),
    soak: () => soak(upstreamUrl),
  };
  try {
    for (const name of measureNames) {
      if (!only.includes(name)) continue;
      const started = performance.now();
      try {
        results[name] = await steps[name]();
      } catch (error) {
        console.error(`${name} failed:`, error);
        results[name] = { error: String(error?.stack ?? error) };
      }
      console.log(`${name} done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
  } finally {
    await stopAll();
  }
  return results;
}

const format = (value, digits = 2) => (value === undefined || Number.isNaN(value) ? '–' : value.toFixed(digits));
const kB = (bytes) => format(bytes === undefined ? undefined : bytes / 1024, 1);
const verdict = (ok) => (ok ? 'PASS' : 'FAIL');
const ratio = (value, reference) => (value === undefined || reference === undefined ? undefined : value / reference);

/** The results table: one row per measure, a column per process, Sluice ÷ lean relay, target. */
function resultRows(results) {
  const rows = [];
  const failed = (name) => results[name]?.error;
  const notRun = (name, label) => rows.push([label, '', '', '', '', '', '', failed(name) ? `failed: ${failed(name).split('\n')[0]}` : 'not run']);
  const perProcess = (label, values, format, target) => {
    const times = ratio(values.sluice, values.lean);
    rows.push([label, '–', format(values.nginx), format(values.lean), format(values.hand), format(values.sluice), times === undefined ? '–' : `${times.toFixed(2)}×`, target(times)]);
  };
  /** A CPU row: each process's median, and the verdict on the median of Sluice's per-round ratios. */
  const perRound = (label, values, target) => {
    const { paired } = values;
    rows.push([label, '–', format(values.nginx, 3), format(values.lean, 3), format(values.hand, 3), format(values.sluice, 3), `${format(paired.ratio)}× (${paired.rounds} rounds: ${format(paired.lowest)}–${format(paired.highest)})`, target(paired.ratio)]);
  };
  const { cpu, latency: latencies, memory, native, hold, idle, cluster, soak: soaked } = results;
  if (cpu && !cpu.error) {
    perRound(`CPU s per 1000 streams (200 chunks, C=${plan.concurrency}, ${plan.cpuStreams} a round); Sluice ÷ lean: median of per-round ratios`, cpu.streams, (times) => `≤ 1.5×: ${verdict(times <= 1.5)}`);
    perRound(`CPU s per 1000 non-streamed (C=${plan.concurrency}, ${plan.nonStreamRequests} a round); the same`, cpu.nonStreamed, (times) => `≤ 1.8×: ${verdict(times <= 1.8)}`);
  } else notRun('cpu', 'CPU s per 1000 streams / non-streamed');
  if (memory && !memory.error) {
    const { rounds } = memory;
    const names = ['nginx', 'lean', 'hand', 'sluice'].filter((name) => rounds.every((round) => round[name]));
    /** Each process's median over the rounds of `key`. */
    const values = (key) => Object.fromEntries(names.map((name) => [name, percentile(rounds.map((round) => round[name][key]), 0.5)]));
    /** A row whose Sluice ÷ lean is the median of the per-round ratios, with their range. */
    const pairedRow = (label, key, target) => {
      const medians = values(key);
      const paired = perRoundRatio(rounds.map((round) => round.sluice[key]), rounds.map((round) => round.lean[key]));
      rows.push([label, '–', kB(medians.nginx), kB(medians.lean), kB(medians.hand), kB(medians.sluice), `${format(paired.ratio)}× (${paired.rounds} rounds: ${format(paired.lowest)}–${format(paired.highest)})`, target(paired.ratio)]);
    };
    pairedRow(`RSS per held slow stream (kB, ${plan.heldStreams} held; medians of ${rounds.length} rounds on fresh processes, Sluice ÷ lean: median of per-round ratios)`, 'rssPerStream', (times) => `≤ 1.2×: ${verdict(times <= 1.2)}`);
    pairedRow('… JS heap + buffers per held stream after GC (kB)', 'heapPerStream', () => '');
    perProcess(`chunk gap p99 under those held streams (ms, 1 s cadence; median of the rounds)`, values('gapP99'), (value) => format(value, 0), () => '');
    const closed = Object.fromEntries(names.map((name) => [name, Math.max(...rounds.map((round) => round[name].count - round[name].open))]));
    if (Object.values(closed).some((count) => count > 0)) rows.push(['… streams not open at the end of the hold (most in a round)', '', ...['nginx', 'lean', 'hand', 'sluice'].map((name) => (name in closed ? String(closed[name]) : '–')), '', 'FAIL: every held stream must stay open']);
  } else notRun('memory', 'RSS per held slow stream; chunk gaps');
  if (latencies && !latencies.error) {
    const totals = Object.fromEntries(['direct', 'nginx', 'lean', 'hand', 'sluice'].filter((name) => latencies[name]).map((name) => [name, latencies[name].p50]));
    rows.push([`time to last byte p50 (ms, C=1, 200-chunk stream; ${plan.latencyRounds} rounds of ${plan.latencyPerRound})`, format(totals.direct), format(totals.nginx), format(totals.lean), format(totals.hand), format(totals.sluice), '', '']);
    const added = Object.fromEntries(Object.entries(totals).map(([name, value]) => [name, value - totals.direct]));
    const { sluiceOverLean: paired } = latencies;
    const signed = (value) => `${value >= 0 ? '+' : '−'}${format(Math.abs(value))}`;
    rows.push([
      'added latency p50 (ms, relay − direct); Sluice − lean: median of per-round differences',
      '–', format(added.nginx), format(added.lean), format(added.hand), format(added.sluice),
      paired ? `${signed(paired.difference)} ms (${paired.rounds} rounds: ${signed(paired.lowest)} to ${signed(paired.highest)})` : '–',
      paired ? `≤ lean + 0.2 ms: ${verdict(paired.difference <= 0.2)}` : '',
    ]);
  } else notRun('latency', 'added latency p50');
  if (hold && !hold.error) {
    rows.push([`${hold.count} concurrent slow streams on Sluice (${plan.bigHoldTicks} chunks each): whole / open at once; RSS per stream (kB)`, '', '', '', '', `${hold.whole} / ${hold.openAtPeak}; ${kB(hold.rssPerStream)}`, '', `all ${hold.count} open at once, all whole: ${verdict(hold.openAtPeak === hold.count && hold.whole === hold.count)}`]);
  } else notRun('hold', `${plan.bigHold} concurrent slow streams`);
  if (idle && !idle.error) {
    const { paired } = idle;
    rows.push([`RSS per idle hub connection (kB, ${plan.idleConnections} open; hand column: hand-written SSE endpoint; medians of ${paired.rounds} rounds on fresh processes, Sluice ÷ hand: median of per-round ratios)`, '', '', '', kB(idle.hand.rss), kB(idle.sluice.rss), `${format(paired.ratio)}× hand (${format(paired.lowest)}–${format(paired.highest)})`, paired.lowest > 0 ? `≤ hand SSE: ${verdict(paired.ratio <= 1)}` : 'not read: RSS fell while connections were open']);
    rows.push(['… JS heap + buffers per idle connection after GC (kB)', '', '', '', kB(idle.hand.heap), kB(idle.sluice.heap), `${format(ratio(idle.sluice.heap, idle.hand.heap))}× hand`, '']);
    const all = [idle.hand.open, idle.hand.pinged, idle.sluice.open, idle.sluice.pinged, idle.sluice.reached, idle.sluice.received].every((value) => value === plan.idleConnections);
    rows.push(['… open / pinged / reached by one push (received)', '', '', '', `${idle.hand.open} / ${idle.hand.pinged} / –`, `${idle.sluice.open} / ${idle.sluice.pinged} / ${idle.sluice.reached} (${idle.sluice.received})`, '', `all ${plan.idleConnections}: ${verdict(all)}`]);
  } else notRun('idle', 'idle hub connection memory');
  if (cluster && !cluster.error) {
    const { cpu: clusterCpu, fanOut } = cluster;
    const complete = fanOut.complete === plan.fanOutRounds && fanOut.reachedAll === plan.fanOutRounds;
    rows.push([`push to ${plan.fanOutConnections} hub connections over 3 nodes, last arrival p50 / p99 / max (ms, ${plan.fanOutRounds} rounds)`, '', '', '', '', `${format(fanOut.p50)} / ${format(fanOut.p99)} / ${format(fanOut.max)}`, '', `p99 ≤ 100 ms, all delivered: ${verdict(complete && fanOut.p99 <= 100)}`]);
    const times = clusterCpu.ratio;
    const spread = (paired) => `${format(paired.ratio)}× single (${paired.rounds} rounds: ${format(paired.lowest)}–${format(paired.highest)})`;
    rows.push(['CPU s per 1000 native streams, single node / cluster (Redis-backed logs); median of per-round ratios', '', '', '', '', `${format(clusterCpu.single, 3)} / ${format(clusterCpu.cluster, 3)}`, spread(clusterCpu), `≤ 1.3×: ${verdict(times <= 1.3)}`]);
    const { paced } = cluster;
    rows.push([`… the same for paced streams (${pacedTokens} tokens, one per read every 20 ms, ${plan.pacedConcurrency} at a time)`, '', '', '', '', `${format(paced.single, 3)} / ${format(paced.cluster, 3)}`, spread(paced), '']);
  } else if (cluster === undefined && only.includes('cluster')) rows.push(['push fan-out; cluster CPU', '', '', '', '', '', '', 'not run: Redis or PostgreSQL did not answer']);
  else notRun('cluster', 'push fan-out; cluster CPU');
  if (native && !native.error) {
    rows.push([
      'CPU s per 1000 streams, OpenAI route / native POST /api/chat; median of per-round ratios',
      '',
      '',
      '',
      '',
      `${format(native.openai, 3)} / ${format(native.native, 3)}`,
      `${format(native.ratio)}× OpenAI (${native.rounds} rounds: ${format(native.lowest)}–${format(native.highest)})`,
      `≤ 1.2×: ${verdict(native.ratio <= 1.2)}`,
    ]);
  } else notRun('native', 'native API CPU against the OpenAI route');
  if (soaked && !soaked.error) {
    const flat = soaked.gcRss?.slope !== undefined && soaked.gcRss.slope <= flatSlopeKbPerMinute;
    const fit = (value) => (value === undefined ? '–' : `${format(value.slope, 0)} ± ${format(value.error, 0)}`);
    const range = soaked.gcRssMb ? `${format(soaked.gcRssMb[0], 1)}–${format(soaked.gcRssMb[1], 1)} MB` : '–';
    rows.push([
      `soak ${soaked.seconds} s at ${format(soaked.ratePerSecond, 0)} streams/s, slopes after ${format(plan.soakWarmUpSeconds, 0)} s (kB/min ± standard error): RSS after full GCs (its range); JS heap after full GCs; RSS without forced GC (from ${format(plan.soakEarlySeconds, 0)} s to then); streams whole / failed`,
      '', '', '', '',
      `${fit(soaked.gcRss)} (${range}); ${fit(soaked.gcHeap)}; ${fit(soaked.rawRss)} (${fit(soaked.warmingRawRss)}); ${soaked.whole} / ${soaked.failed}`,
      '',
      `RSS after GCs flat (≤ ${flatSlopeKbPerMinute} kB/min), none failed: ${verdict(flat && soaked.failed === 0)}`,
    ]);
  } else notRun('soak', 'soak');
  return rows;
}

async function main() {
  console.log(`measures: ${only.join(', ')}${quick ? ' (quick run)' : ''}`);
  const results = await measure();
  await Promise.all([agent.close(), holdAgent.close(), closeHubClients()]);
  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  const table = markdownTable(['measure', 'direct', 'nginx', 'lean relay', 'hand relay', 'Sluice', 'Sluice ÷ lean', 'target'], resultRows(results));
  console.log(`\n${machine}\n\n${table}\n`);

  mkdirSync(join(root, 'bench/results'), { recursive: true });
  const stamp = new Date().toISOString().replaceAll(':', '-').slice(0, 19);
  const rawPath = join(root, `bench/results/${stamp}.json`);
  writeFileSync(rawPath, `${JSON.stringify({ machine, quick, only, plan, results }, null, 2)}\n`);
  const pagePath = join(root, 'docs/benchmarks.md');
  const section = `Last run: ${machine}; ${quick ? 'quick run (BENCH_QUICK=1, small counts)' : 'full run'}${only.length < measureNames.length ? `, measures ${only.join(', ')} only` : ''}.\n\n${table}`;
  writeFileSync(pagePath, replaceResults(readFileSync(pagePath, 'utf8'), section));
  console.log(`raw results: ${rawPath}; table written to docs/benchmarks.md`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
