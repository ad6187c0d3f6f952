// Preloaded (`--import`) into a relay by bench/latency-split.mjs: the times, from the moment
// node:http has a request's head, at which that request reaches each step the relay's libraries
// announce on diagnostics channels (undici's request to the upstream, its answer, the response's
// end), how much of that time the event loop was busy (a step reached late while the loop was idle
// waited for another process: the upstream, or the kernel), and how long the event loop stays busy
// after a response ended. A request that carries `x-sent-at` (the client's process.hrtime in µs when
// it sent the request: one clock for every process of the machine) also gets how long it took to
// arrive, and the moment its response ended on that clock, so the client can tell how long the last
// bytes took to reach it. On SIGTERM it writes the medians over the last 2000 chat requests, and
// those requests' end moments by send time, as JSON to the file LATENCY_MARKS_OUT names, and exits.
import { subscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const steps = [
  ['undici:request:create', 'upstream request created'],
  ['undici:client:sendHeaders', 'upstream request written'],
  ['undici:request:headers', 'upstream head read'],
  ['undici:request:trailers', 'upstream body read'],
  ['http.server.response.finish', 'response ended'],
];
const rows = [];
let current;
let finished;
/** process.hrtime in µs, the clock of `x-sent-at`. */
const clock = () => Number(process.hrtime.bigint() / 1000n);
const busyAfterFinish = [];

subscribe('http.server.request.start', ({ request }) => {
  if (finished) {
    busyAfterFinish.push(performance.eventLoopUtilization(finished).active);
    finished = undefined;
  }
  if (!request.url?.startsWith('/v1/chat/completions')) return;
  current = { start: performance.now(), startElu: performance.eventLoopUtilization() };
  const sentAt = Number(request.headers['x-sent-at']);
  if (sentAt > 0) {
    current.sentAt = sentAt;
    current['request arrived (after the client sent it)'] = (clock() - sentAt) / 1000;
  }
  rows.push(current);
});
for (const [channel, name] of steps) {
  subscribe(channel, () => {
    if (current && current[name] === undefined) {
      current[name] = performance.now() - current.start;
      current[`${name}, loop busy`] = performance.eventLoopUtilization(current.startElu).active;
    }
    if (channel === 'http.server.response.finish') {
      finished = performance.eventLoopUtilization();
      if (current) current.endedAt ??= clock();
    }
  });
}

process.once('SIGTERM', () => {
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const last = rows.slice(-2000);
  const arrival = 'request arrived (after the client sent it)';
  const medians = { [arrival]: median(last.map((row) => row[arrival]).filter((value) => value !== undefined)) };
  Object.assign(medians, Object.fromEntries(steps.flatMap(([, name]) => [name, `${name}, loop busy`].map((key) => [key, median(last.map((row) => row[key]).filter((value) => value !== undefined))]))));
  medians['loop busy after the response ended'] = median(busyAfterFinish.slice(-2000));
  const endedAt = Object.fromEntries(last.filter((row) => row.sentAt !== undefined && row.endedAt !== undefined).map((row) => [row.sentAt, row.endedAt]));
  writeFileSync(process.env.LATENCY_MARKS_OUT ?? 'latency-marks.json', JSON.stringify({ medians, endedAt }));
  setTimeout(() => process.exit(0), 10);
});
