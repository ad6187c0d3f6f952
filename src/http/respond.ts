// Plain JSON responses and the before-first-byte error response.
import type { ServerResponse } from 'node:http';
import { openAiErrorBody } from '../relay/encoders/openai-error-body.js';
import { anthropicErrorBody } from '../relay/encoders/messages-error-body.js';
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
  sendJson(response, statusOf(error), openAiErrorBody(error), retryHeaders(error));
}

/** The same, with the Anthropic-shaped body of the Messages API (docs/messages.md). */
export function sendAnthropicError(response: ServerResponse, error: SluiceError | ErrorPayload): void {
  sendJson(response, statusOf(error), anthropicErrorBody(error), retryHeaders(error));
}

function statusOf(error: SluiceError | ErrorPayload): number {
  return error instanceof SluiceError ? error.status : errorTable[error.code].status;
}

function retryHeaders(error: SluiceError | ErrorPayload): Record<string, string> {
  return error.retryAfterSeconds !== undefined ? { 'retry-after': error.retryAfterSeconds.toString() } : {};
}
