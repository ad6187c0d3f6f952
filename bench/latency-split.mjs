// Where the added latency of one stream at a time goes (issue 15's C=1 measure, decision 0027):
// runs the lean relay and Sluice (dist/) with bench/latency-marks.mjs preloaded, sends them
// sequential 200-chunk streams, and prints, per relay, the median time (ms after node:http had
// the request's head) of each step: upstream request created and written, upstream head and body
// read, response ended, and the event loop's busy time after the response ended. Comparing the
// two rows shows whether the extra time is before the upstream call, while waiting for it, or after.
// The client's side is on one clock with the relay's (process.hrtime, sent as `x-sent-at`): how long
// the request took to arrive (the relay was busy, or asleep), and how long after the response ended
// the client had its last byte (one large write read and parsed at once, or small ones as they came).
//
//   npm run build && node bench/latency-split.mjs
//
// LATENCY_SPLIT_REQUESTS streams per relay, 11000 by default: V8 goes on optimising Sluice's
// functions until about the 8000th, and the medians are over the last 2000. LATENCY_SPLIT_LOG_LEVEL
// sets Sluice's `log.level` (`info` by default, as the bench runs it; `warn` drops the request
// lines, to see what they cost: decision 0038).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { percentile } from './report.mjs';
import { benchKey as key, startScript, startSluice, stopAll } from './processes.mjs';

const requests = Number(process.env.LATENCY_SPLIT_REQUESTS ?? 11000);
const agent = new Agent({ keepAliveTimeout: 60_000 });
const execArgv = ['--import', new URL('./latency-marks.mjs', import.meta.url).pathname];

/** process.hrtime in µs: one clock for the client and the relay. */
const clock = () => Number(process.hrtime.bigint() / 1000n);

/** Sends one stream and returns when it was sent and when its last byte came (µs, `clock`). */
async function chat(url) {
  const sentAt = clock();
  const response = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'x-sent-at': String(sentAt) },
    body: JSON.stringify({ model: 'bench-model', stream: true, messages: [{ role: 'user', content: 'Benchmark me.' }] }),
  });
  const text = await response.body.text();
  const lastByteAt = clock();
  if (response.statusCode !== 200 || !text.includes('data: [DONE]')) throw new Error(`${url}: incomplete answer`);
  return { sentAt, lastByteAt };
}

/** Starts a relay with the marks preloaded, sends `requests` streams one at a time, and returns its medians and the client's. */
async function split(name, start) {
  process.env.LATENCY_MARKS_OUT = join(directory, `${name}.json`);
  const relay = await start();
  const lastByteAt = new Map();
  for (let index = 0; index < requests; index++) {
    const times = await chat(relay.url);
    lastByteAt.set(times.sentAt, times.lastByteAt);
  }
  await relay.stop(); // SIGTERM: the preload writes its medians and exits
  const { medians, endedAt } = JSON.parse(readFileSync(process.env.LATENCY_MARKS_OUT, 'utf8'));
  const sent = Object.keys(endedAt).map(Number);
  medians['client had the last byte (after the response ended)'] = percentile(sent.map((sentAt) => (lastByteAt.get(sentAt) - endedAt[sentAt]) / 1000), 0.5);
  medians['client had the last byte (after it sent the request)'] = percentile(sent.map((sentAt) => (lastByteAt.get(sentAt) - sentAt) / 1000), 0.5);
  return medians;
}

const directory = mkdtempSync(join(tmpdir(), 'sluice-latency-split-'));

try {
  const upstream = await startScript('mock-upstream.mjs');
  const results = {
    lean: await split('lean', () => startScript('lean-relay.mjs', { UPSTREAM_URL: `${upstream.url}/v1` }, { execArgv })),
    sluice: await split('sluice', () => startSluice(upstream.url, { execArgv, logLevel: process.env.LATENCY_SPLIT_LOG_LEVEL ?? 'info' })),
  };
  const names = Object.keys(results.lean);
  console.log(`median ms after node:http had the request's head (the rows that name another moment: after that one), over the last 2000 of ${requests} sequential streams`);
  console.log(`${'step'.padEnd(52)} ${'lean'.padStart(7)} ${'sluice'.padStart(7)} ${'diff'.padStart(7)}`);
  for (const name of names) {
    const [lean, sluice] = [results.lean[name], results.sluice[name]];
    console.log(`${name.padEnd(52)} ${lean.toFixed(3).padStart(7)} ${sluice.toFixed(3).padStart(7)} ${(sluice - lean >= 0 ? '+' : '') + (sluice - lean).toFixed(3).padStart(6)}`);
  }
} finally {
  await stopAll();
  await agent.close();
  rmSync(directory, { recursive: true, force: true });
}
