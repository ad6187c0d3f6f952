// Plain JSON responses and the before-first-byte error response.
import type { ServerResponse } from 'node:http';
import { openAiErrorBody } from '../relay/encoders/openai-error-body.js';
import { SluiceError } from '../errors/sluice-error.js';
import { errorTable } from '../errors/table.js';
import type { ErrorPayload, StreamEvent } from '../contract/stream-event.js';

export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (response.headersSent || response.destroyed) return;
  const text = JSON.stringify(body);
  response.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text).toString(),
  });
  response.end(text);
}

/**
 * Copies the headers a provider asked to pass through (its `start` event's responseHeaders, e.g.
 * x-trace-id) onto the response, while the head is still unwritten.
 */
export function applyUpstreamHeaders(response: ServerResponse, events: readonly StreamEvent[]): void {
  if (response.headersSent) return;
  const start = events.find((event) => event.type === 'start');
  if (start?.type !== 'start' || !start.responseHeaders) return;
  for (const [name, value] of Object.entries(start.responseHeaders)) response.setHeader(name, value);
}

/** Answers with the error's status and an OpenAI-shaped body (and Retry-After when known). */
export function sendError(response: ServerResponse, error: SluiceError | ErrorPayload): void {
  const status = error instanceof SluiceError ? error.status : errorTable[error.code].status;
  const headers: Record<string, string> = {};
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = error.retryAfterSeconds.toString();
  sendJson(response, status, openAiErrorBody(error), headers);
}
