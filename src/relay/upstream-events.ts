// Starts an adapter's upstream call into a sink, whichever form the adapter returned
// (contract/provider.ts): a pushed call is handed the sink; an async iterable is pulled, one batch
// at a time, and told to stop (`return()`) when the sink closes.
import type { EventBatch, PushedEvents, UpstreamEvents } from '../contract/provider.js';
import type { TimedSink } from './timeouts.js';

function isPushed(upstream: UpstreamEvents): upstream is PushedEvents {
  return typeof (upstream as Partial<PushedEvents>).pushTo === 'function';
}

export function startUpstream(upstream: UpstreamEvents, sink: TimedSink): void {
  if (isPushed(upstream)) {
    upstream.pushTo(sink);
    return;
  }
  const iterator = upstream[Symbol.asyncIterator]();
  // Not awaited: an adapter stuck in a read cannot hold the attempt, which ended already.
  sink.onClose(() => void Promise.resolve(iterator.return?.()).catch(() => {}));
  void pull(iterator, sink);
}

async function pull(iterator: AsyncIterator<EventBatch>, sink: TimedSink): Promise<void> {
  try {
    while (!sink.closed) {
      const result = await iterator.next();
      if (sink.closed) return;
      if (result.done === true) {
        sink.end();
        return;
      }
      sink.events(result.value);
    }
  } catch (error) {
    sink.fail(error);
  }
}
