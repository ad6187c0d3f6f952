// Compares two builds of Sluice in one run: this checkout's dist/ and another checkout's (a copy
// of the repository at an earlier commit, built), side by side with the lean relay, in rounds
// that rotate which goes first. On a shared machine, ratios between runs drift by ±15%; an A/B
// in one run is what an optimisation is judged by (decision 0023).
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
const agent = new Agent({ connections: 4096, keepAliveTimeout: 60_000, pipelining: 1 });

/** One 200-chunk stream, checked whole. */
async function chat(url) {
  const response = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: 'bench-model', stream: true, messages: [{ role: 'user', content: 'Benchmark me.' }] }),
  });
  let text = '';
  for await (const chunk of response.body) text += chunk.toString();
  if (!text.includes('token199 ') || !text.includes('data: [DONE]')) throw new Error(`${url}: incomplete answer`);
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
  for (const name of names) await load(targets[name].url, 1500); // warm up the JIT
  for (let round = 0; round < rounds; round++) {
    const order = [...names.slice(round % names.length), ...names.slice(0, round % names.length)];
    for (const name of order) {
      const before = cpuSeconds(targets[name].pids());
      await load(targets[name].url, total);
      cpu[name].push(((cpuSeconds(targets[name].pids()) - before) / total) * 1000);
    }
    for (const name of order) {
      for (let index = 0; index < 40; index++) {
        const started = performance.now();
        await chat(targets[name].url);
        latency[name].push(performance.now() - started);
      }
    }
  }
  for (const name of names) {
    console.log(`${name.padEnd(5)} CPU s per 1000 streams ${median(cpu[name]).toFixed(3)} (${(median(cpu[name]) / median(cpu.lean)).toFixed(2)}× lean; rounds ${cpu[name].map((value) => value.toFixed(2)).join(' ')}), time to last byte p50 ${median(latency[name]).toFixed(2)} ms`);
  }
} finally {
  await stopAll();
  await base.stopAll();
}
process.exit(0);
