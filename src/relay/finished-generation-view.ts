// A finished generation's log, kept elsewhere (a stored response), read through the same shape as
// a live one, so the follow loop and the encoders replay it exactly as they relayed it.
import type { StreamEvent } from '../contract/stream-event.js';
import type { GenerationView } from './generation.js';

/** A view that never changes: finished, nothing to subscribe to or cancel. */
export function createFinishedGenerationView(id: string, events: readonly StreamEvent[]): GenerationView {
  return {
    id,
    events,
    // As the live generation was: a log that failed before any answer was never committed, so a
    // replay of it is an HTTP error too.
    committed: events.some((event) => event.type === 'text-delta' || event.type === 'tool-call-delta' || event.type === 'upstream-event'),
    finished: true,
    subscribe: () => () => {},
    cancel: () => {},
    // Nothing is produced any more, so nothing waits in the log on the client's account.
    bytesFrom: () => 0,
  };
}
