// OpenAI chat.completion.chunk SSE events, written by custom mock handlers (`mock.handlers`) that
// need to stream something the default plan cannot: a pause, a drop, a per-request text.
import type { ServerResponse } from 'node:http';

const base = { id: 'chatcmpl-upstream123', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini', system_fingerprint: 'fp_mock' };

/** One chunk with `delta` (e.g. `{ content: 'hi' }`), as the SSE event the real API sends. */
export function chunkEvent(delta: Record<string, unknown>, finishReason: string | null = null, id = base.id): string {
  return `data: ${JSON.stringify({ ...base, id, choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] })}\n\n`;
}

/** The first chunk of every real answer: the role, with empty content. */
export const roleEvent = chunkEvent({ role: 'assistant', content: '' });

export function contentEvent(text: string, id?: string): string {
  return chunkEvent({ content: text }, null, id);
}

/** The finish chunk and `[DONE]`. */
export const finishEvents = `${chunkEvent({}, 'stop')}data: [DONE]\n\n`;

/** Sends the SSE head at once, before any event. */
export function openStream(response: ServerResponse): void {
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  response.flushHeaders();
}

/** Resolves when the response may be written again (or is gone). */
export function drained(response: ServerResponse): Promise<void> {
  if (!response.writableNeedDrain || response.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      response.off('drain', done).off('close', done);
      resolve();
    };
    response.on('drain', done).on('close', done);
  });
}
