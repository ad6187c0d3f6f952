// The C=1 gap between Sluice and the lean relay, measured in pairs (decision 0040): one process of
// each, warmed up alike, then streams sent to one and to the other in turn, which goes first
// alternating, in blocks of LATENCY_PAIRS_BLOCK streams (1 by default; the bench's rounds are
// blocks of 100). Both sides of a pair meet the same state of the machine, which moves a relay's
// figure more between runs minutes apart than the gap itself (decision 0027). Prints each relay's
// p50 time to the last byte, the difference of the two, and when the client had the response's
// head and first body bytes: where in the answer the gap lies.
//
// LATENCY_PAIRS_PIN places the processes on the machine's first and last CPU (Linux `taskset`),
// to see how much of the gap is where the kernel runs them (decision 0044): `upstream` gives the
// mock upstream a CPU of its own and puts both relays and this client on the other; `relays` gives
// the relays a CPU of their own and puts the mock and the client on the other. Unset, the kernel
// places them, as in `npm run bench`.
//
//   npm run build && node bench/latency-pairs.mjs
//   LATENCY_PAIRS_BLOCK=100 LATENCY_PAIRS=3000 LATENCY_PAIRS_WARM_UP=5000 node bench/latency-pairs.mjs
//   LATENCY_PAIRS_BLOCK=100 LATENCY_PAIRS_PIN=relays node bench/latency-pairs.mjs
import { availableParallelism } from 'node:os';
import { Agent } from 'undici';
import { chat as sendChat } from './chat-client.mjs';
import { percentile } from './report.mjs';
import { pinTo, startScript, startSluice, stopAll } from './processes.mjs';

const block = Number(process.env.LATENCY_PAIRS_BLOCK ?? 1);
const pairs = Number(process.env.LATENCY_PAIRS ?? 2000);
// V8 compiles the per-request functions until about the 5000th request (decision 0040).
const warmUp = Number(process.env.LATENCY_PAIRS_WARM_UP ?? 5000);
const pin = process.env.LATENCY_PAIRS_PIN || undefined;
if (pin !== undefined && pin !== 'upstream' && pin !== 'relays') throw new Error(`LATENCY_PAIRS_PIN: "upstream" or "relays", not "${pin}"`);
if (pin !== undefined && availableParallelism() < 2) throw new Error('LATENCY_PAIRS_PIN needs two CPUs or more');
const agent = new Agent({ keepAliveTimeout: 60_000 });

/** One stream, read as the bench reads it; ms from sending to the head, the first body bytes and the last. */
async function chat(url) {
  const { headMs, firstByteMs, totalMs } = await sendChat(url, { dispatcher: agent });
  return { head: headMs, first: firstByteMs, last: totalMs };
}

try {
  const upstream = await startScript('mock-upstream.mjs');
  const relays = [
    { ...(await startScript('lean-relay.mjs', { UPSTREAM_URL: `${upstream.url}/v1` })), name: 'lean' },
    { ...(await startSluice(upstream.url)), name: 'sluice' },
  ];
  if (pin !== undefined) {
    const [first, last] = [0, availableParallelism() - 1];
    const alone = pin === 'upstream' ? [upstream] : relays;
    const together = pin === 'upstream' ? relays : [upstream];
    for (const target of alone) pinTo(target.child.pid, last);
    for (const target of together) pinTo(target.child.pid, first);
    pinTo(process.pid, first);
    console.log(`pinned: ${pin === 'upstream' ? 'the mock upstream' : 'the relays'} on CPU ${last}, the rest on CPU ${first}`);
  }
  for (let index = 0; index < warmUp; index++) for (const relay of relays) await chat(relay.url);
  const times = { lean: [], sluice: [] };
  for (let pair = 0; pair < pairs; pair += block) {
    const order = (pair / block) % 2 === 0 ? relays : [...relays].reverse();
    for (const relay of order) for (let index = 0; index < block; index++) times[relay.name].push(await chat(relay.url));
  }
  const p50 = (name, part) => percentile(times[name].map((time) => time[part]), 0.5);
  console.log(`${pairs} pairs in blocks of ${block}, after ${warmUp} streams each; p50 ms after sending`);
  console.log(`${'relay'.padEnd(8)} ${'head'.padStart(7)} ${'first'.padStart(7)} ${'last'.padStart(7)}`);
  for (const { name } of relays) console.log(`${name.padEnd(8)} ${p50(name, 'head').toFixed(3).padStart(7)} ${p50(name, 'first').toFixed(3).padStart(7)} ${p50(name, 'last').toFixed(3).padStart(7)}`);
  console.log(`Sluice − lean, last byte: ${(p50('sluice', 'last') - p50('lean', 'last')).toFixed(3)} ms`);
} finally {
  await stopAll();
  await agent.close();
}
