// Answers the driver's `memory` IPC message with the process's memory after full GCs (the process
// runs with --expose-gc), so heap growth is not hidden by garbage not yet collected. The second
// round, a second later, lets V8 give back pages the first one freed; without it a process read
// shortly after start can show less RSS with thousands of connections open than before.
// The reply also gives the young generation's size (`newSpace`) and its resident pages
// (`newSpaceResident`: RSS counts those, bench/hub-clients.mjs rssGrowth).
// `{ heapSnapshot: path }` writes a heap snapshot there (bench/profile.mjs diffs two of them).
import { setTimeout as sleep } from 'node:timers/promises';
import { writeHeapSnapshot, getHeapSpaceStatistics } from 'node:v8';

export function answerMemoryRequests() {
  process.on('message', async (message) => {
    if (typeof message === 'object' && typeof message?.heapSnapshot === 'string') {
      globalThis.gc?.();
      writeHeapSnapshot(message.heapSnapshot);
      process.send?.({ heapSnapshot: message.heapSnapshot });
      return;
    }
    if (message !== 'memory') return;
    globalThis.gc?.();
    await sleep(1000);
    globalThis.gc?.();
    globalThis.gc?.();
    const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
    // The young generation: RSS that a load grows once (bench/hub-clients.mjs).
    const young = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
    process.send?.({ memory: { rss, heap: heapUsed + external + arrayBuffers, heapTotal, newSpace: young?.space_size, newSpaceResident: young?.physical_space_size } });
  });
}
