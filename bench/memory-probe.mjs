// Answers the driver's `memory` IPC message with the process's memory after a full GC
// (the process runs with --expose-gc), so heap growth is not hidden by garbage not yet collected.
export function answerMemoryRequests() {
  process.on('message', (message) => {
    if (message !== 'memory') return;
    globalThis.gc?.();
    globalThis.gc?.();
    const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
    process.send?.({ memory: { rss, heap: heapUsed + external + arrayBuffers } });
  });
}
