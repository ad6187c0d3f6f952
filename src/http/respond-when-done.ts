// One JSON answer for a whole generation: waits for its terminal event, then answers once with
// the body `toBody` builds (or, when it failed, the error's status and body). A client that leaves
// first unsubscribes, which cancels a generation nobody else follows.
import type { ServerResponse } from 'node:http';
import type { GenerationView } from '../relay/generation.js';
import type { ErrorPayload, StreamEvent } from '../contract/stream-event.js';
import { applyUpstreamHeaders, sendError, sendJson } from './respond.js';
import { onResponseClose } from './on-response-close.js';

/** `sendFailure` answers a failed generation; OpenAI's error body by default. */
export function respondWhenDone(
  generation: GenerationView,
  response: ServerResponse,
  toBody: (events: readonly StreamEvent[]) => unknown,
  sendFailure: (response: ServerResponse, error: ErrorPayload) => void = sendError,
): Promise<void> {
  return new Promise((resolve) => {
    const onClose = () => {
      unsubscribe();
      resolve();
    };
    const check = () => {
      const last = generation.events[generation.events.length - 1];
      if (!last || (last.type !== 'end' && last.type !== 'error')) return;
      stopWaitingForClose();
      unsubscribe();
      applyUpstreamHeaders(response, generation.events);
      if (last.type === 'error') sendFailure(response, last.error);
      else sendJson(response, 200, toBody(generation.events));
      resolve();
    };
    const unsubscribe = generation.subscribe(check);
    // A client that left while the route awaited (body, admission) counts as leaving now.
    const stopWaitingForClose = onResponseClose(response, onClose);
    // A generation may already be over (a retained one, or a very fast answer).
    if (generation.finished) check();
  });
}
