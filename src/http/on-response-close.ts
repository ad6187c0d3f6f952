// Calls a listener once when a response's client goes away, even when it went away before anybody
// listened. A route awaits the body, authentication and admission (a Redis round trip in cluster
// mode) before it follows its generation; a client that disconnects meanwhile has already had its
// 'close' event, and a plain `once('close')` registered after that never fires, so the generation
// would run to its end for nobody (docs/architecture.md, "The path of one request").
import type { ServerResponse } from 'node:http';

/**
 * Calls `listener` once when `response` closes; returns the function that stops that (idempotent).
 * A response that is already closed (`destroyed`: the client left, or it was destroyed) calls it
 * on a microtask, so that the caller finishes setting up (subscribing, say) before it runs.
 */
export function onResponseClose(response: ServerResponse, listener: () => void): () => void {
  if (!response.destroyed) {
    response.once('close', listener);
    return () => response.off('close', listener);
  }
  let wanted = true;
  queueMicrotask(() => {
    if (wanted) listener();
  });
  return () => {
    wanted = false;
  };
}
