// What a finished native generation costs while it is kept for resuming (generations.retentionMs,
// 5 minutes by default): heap and RSS per kept generation, after full GCs, and the CPU per 1000
// native streams (POST /api/chat, 200 chunks, C=64) while they pile up. Against a base build
// too when COMPARE_BASE names one (a checkout at another commit, built), in rounds that alternate
// which goes first (docs/decisions/0047-a-kept-generation-is-packed.md).
//
//   npm run build && node bench/kept-generations.mjs
//   git worktree add /tmp/sluice-base <commit> && (cd /tmp/sluice-base && npm run build)
//   COMPARE_BASE=/tmp/sluice-base KEPT_ROUNDS=9 node bench/kept-generations.mjs
import { chat } from './chat-client.mjs';
import { percentile } from './report.mjs';
import * as self from './processes.mjs';

const baseRoot = process.env.COMPARE_BASE;
const rounds = Number(process.env.KEPT_ROUNDS ?? 6);
const streams = Number(process.env.KEPT_STREAMS ?? 2000);
const builds = { this: self, ...(baseRoot ? { base: await import(`${baseRoot}/bench/processes.mjs`) } : {}) };

async function load(url, total, options) {
  let started = 0;
  const worker = async () => {
    while (started < total) {
      started++;
      await chat(url, options);
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
}

try {
  const upstream = await self.startScript('mock-upstream.mjs', {}, { openFiles: 20_000 });
  const targets = {};
  for (const [name, processes] of Object.entries(builds)) targets[name] = await processes.startSluice(upstream.url, {});
  // Warm up on both routes; the native streams of the warm-up are kept too, and counted below.
  for (const target of Object.values(targets)) {
    await load(target.url, 3000, {});
    await load(target.url, 1000, { native: true });
  }
  const before = {};
  for (const [name, target] of Object.entries(targets)) before[name] = await target.memory();
  const cpu = Object.fromEntries(Object.keys(targets).map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    const names = Object.keys(targets);
    for (const name of round % 2 === 0 ? names : names.reverse()) {
      const target = targets[name];
      const started = self.cpuSeconds(target.pids());
      await load(target.url, streams, { native: true });
      cpu[name].push(((self.cpuSeconds(target.pids()) - started) / streams) * 1000);
    }
  }
  const kept = rounds * streams;
  for (const [name, target] of Object.entries(targets)) {
    const after = await target.memory();
    const perKept = (field) => ((after[field] - before[name][field]) / kept / 1024).toFixed(1);
    console.log(`${name}: ${kept} more generations kept: heap ${perKept('heap')} kB and RSS ${perKept('rss')} kB each (heap ${(after.heap / 1e6).toFixed(0)} MB, RSS ${(after.rss / 1e6).toFixed(0)} MB); CPU s per 1000 native streams ${cpu[name].map((value) => value.toFixed(3)).join(' ')}, median ${percentile(cpu[name], 0.5).toFixed(3)}`);
  }
  if (cpu.base) {
    const ratios = cpu.this.map((value, round) => value / cpu.base[round]);
    console.log(`this ÷ base CPU per round: ${ratios.map((value) => value.toFixed(2)).join(' ')}, median ${percentile(ratios, 0.5).toFixed(2)}`);
  }
} finally {
  for (const processes of Object.values(builds)) await processes.stopAll();
}
process.exit(0);
