// Compares two builds of Sluice in one run: this checkout's dist/ and another checkout's (a copy
// of the repository at an earlier commit, built), side by side with the lean relay, in rounds
// that rotate which goes first. On a shared machine, ratios between runs drift by ±15%; an A/B
// in one run is what an optimisation is judged by (decision 0023). COMPARE_NON_STREAMED=1 loads
// non-streamed requests instead of streams (the per-request path, decision 0025); the latency
// figures are always 200-chunk streams at C=1, time to first and to last byte.
//
//   git worktree add /tmp/sluice-base <commit> && (cd /tmp/sluice-base && npm run build)
//   COMPARE_BASE=/tmp/sluice-base COMPARE_ROUNDS=9 COMPARE_STREAMS=2000 node bench/compare-builds.mjs
import { Agent, request } from 'undici';
import { benchKey as key, cpuSeconds, startScript, startSluice, stopAll } from './processes.mjs';

const baseRoot = process.env.COMPARE_BASE;
if (!baseRoot) throw new Error('COMPARE_BASE: the path of the other checkout (built) is required');
const base = await import(`${baseRoot}/bench/processes.mjs`);
const rounds = Number(process.env.COMPARE_ROUNDS ?? 9);
const total = Number(process.env.COMPARE_STREAMS ?? 2000);
const nonStreamed = process.env.COMPARE_NON_STREAMED === '1';
const latencyRequests = Number(process.env.COMPARE_LATENCY ?? 40);
const agent = new Agent({ connections: 4096, keepAliveTimeout: 60_000, pipelining: 1 });

/** One 200-chunk answer, streamed or not, checked whole; the times to its first and last byte. */
async function chat(url, stream = !nonStreamed) {
  const started = performance.now();
  const response = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: 'bench-model', stream, messages: [{ role: 'user', content: 'Benchmark me.' }] }),
  });
  let firstByteAt;
  let text = '';
  for await (const chunk of response.body) {
    firstByteAt ??= performance.now();
    text += chunk.toString();
  }
  if (response.statusCode !== 200 || !text.includes('token199 ') || (stream && !text.includes('data: [DONE]'))) throw new Error(`${url}: incomplete answer`);
  return { firstMs: firstByteAt - started, lastMs: performance.now() - started };
}

async function load(url, count, concurrency = 64) {
  let started = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (started < count) { started++; await chat(url); } }));
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

try {
  const upstream = await startScript('mock-upstream.mjs');
  const targets = {
    lean: await startScript('lean-relay.mjs', { UPSTREAM_URL: `${upstream.url}/v1` }),
    base: await base.startSluice(upstream.url),
    this: await startSluice(upstream.url),
  };
  const names = Object.keys(targets);
  const cpu = Object.fromEntries(names.map((name) => [name, []]));
  const latency = Object.fromEntries(names.map((name) => [name, []]));
  const firstByte = Object.fromEntries(names.map((name) => [name, []]));
  for (const name of names) await load(targets[name].url, 1500); // warm up the JIT
  for (let round = 0; round < rounds; round++) {
    const order = [...names.slice(round % names.length), ...names.slice(0, round % names.length)];
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
  for (const name of names) {
    const what = nonStreamed ? 'non-streamed' : 'streams';
    console.log(`${name.padEnd(5)} CPU s per 1000 ${what} ${median(cpu[name]).toFixed(3)} (${(median(cpu[name]) / median(cpu.lean)).toFixed(2)}× lean; rounds ${cpu[name].map((value) => value.toFixed(2)).join(' ')}), stream at C=1: first byte p50 ${median(firstByte[name]).toFixed(2)} ms, last byte p50 ${median(latency[name]).toFixed(2)} ms (+${(median(latency[name]) - median(latency.lean)).toFixed(2)} over lean)`);
  }
} finally {
  await stopAll();
  await base.stopAll();
}
process.exit(0);
