// How long this machine takes to wake a process on another CPU once that CPU has gone idle
// (decision 0045). Two Node processes pass one byte back and forth over a Unix socket, pinned with
// Linux `taskset` to one CPU or to two. Each placement is run twice: trips back to back, and trips
// with a 1 ms pause before each. During the pause the other process's CPU has nothing to do.
//
// On a bare-metal host, or a VM whose host keeps an idle vCPU polling, the four medians are
// close. On the 2-core Firecracker/PVM machines of decision 0045, a trip between two CPUs after
// a pause took about 75 µs longer than back to back. Every request at C=1 wakes the relay, the
// upstream and the client once or more, so work that keeps one waiting leaves the others' CPUs idle
// for longer, and they wake more slowly. Read the added latency at C=1 (`npm run bench`) with this
// figure in hand.
//
//   node bench/wake-cost.mjs            (WAKE_TRIPS trips per case, 3000 by default)
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { availableParallelism, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { pinTo } from './processes.mjs';
import { percentile } from './report.mjs';

if (process.argv[2] === 'echo') {
  // The child: sends every byte straight back.
  const socket = connect(process.argv[3]);
  socket.on('data', (data) => socket.write(data));
  socket.on('close', () => process.exit(0));
} else {
  const trips = Number(process.env.WAKE_TRIPS ?? 3000);
  if (!Number.isInteger(trips) || trips < 100) throw new Error(`WAKE_TRIPS: a whole number of at least 100, not "${process.env.WAKE_TRIPS}"`);
  if (platform() !== 'linux') throw new Error('bench/wake-cost.mjs pins processes with Linux taskset');
  if (availableParallelism() < 2) throw new Error('bench/wake-cost.mjs needs two CPUs or more');
  const last = availableParallelism() - 1;

  const directory = mkdtempSync(join(tmpdir(), 'sluice-wake-'));
  const path = join(directory, 'echo.sock');
  const server = createServer();
  await new Promise((resolve) => server.listen(path, resolve));
  const accepted = new Promise((resolve) => server.once('connection', resolve));
  const child = fork(fileURLToPath(import.meta.url), ['echo', path], { stdio: 'inherit' });
  try {
    const socket = await accepted;
    let answered;
    socket.on('data', () => answered?.());
    /** One byte there and back; µs. */
    const trip = async () => {
      const started = process.hrtime.bigint();
      const back = new Promise((resolve) => (answered = resolve));
      socket.write('x');
      await back;
      return Number(process.hrtime.bigint() - started) / 1000;
    };
    const rows = [];
    for (const [placement, childCpu] of [['one CPU', 0], ['two CPUs', last]]) {
      pinTo(process.pid, 0);
      pinTo(child.pid, childCpu);
      for (const pauseMs of [0, 1]) {
        for (let index = 0; index < 200; index++) await trip();
        const times = [];
        for (let index = 0; index < trips; index++) {
          if (pauseMs > 0) await sleep(pauseMs);
          times.push(await trip());
        }
        rows.push({ placement, pause: pauseMs > 0 ? 'after a 1 ms pause' : 'back to back', p50: percentile(times, 0.5), p90: percentile(times, 0.9) });
      }
    }
    console.log(`round trip of one byte between two processes, ${trips} trips per case (µs)`);
    console.log(`${'placement'.padEnd(10)} ${'trips'.padEnd(20)} ${'p50'.padStart(7)} ${'p90'.padStart(7)}`);
    for (const row of rows) console.log(`${row.placement.padEnd(10)} ${row.pause.padEnd(20)} ${row.p50.toFixed(1).padStart(7)} ${row.p90.toFixed(1).padStart(7)}`);
    const [apart, apartPaused] = rows.slice(2).map((row) => row.p50);
    console.log(`waking the other CPU after it idled: +${(apartPaused - apart).toFixed(1)} µs a trip over back to back`);
    socket.end();
  } finally {
    child.kill();
    server.close();
    rmSync(directory, { recursive: true, force: true });
  }
}
