// What every part of the client shares: the gateway's base URL, the credential (always in the
// Authorization header, never in a URL), the injected fetch and WebSocket, the retry settings,
// and JSON requests that turn error answers into SluiceClientError.
import type { ResolvedRetry } from './backoff.js';
import { errorFromResponse, SluiceClientError } from './errors.js';
import type { WebSocketConstructor } from './websocket.js';

export interface ClientContext {
  /** Without a trailing slash; '' means the page's own origin (browsers only). */
  readonly baseUrl: string;
  readonly apiKey: string | undefined;
  readonly fetch: typeof fetch;
  readonly WebSocket: WebSocketConstructor | undefined;
  readonly retry: ResolvedRetry;
}

/** The request headers for the gateway: `extra`, plus Authorization when there is a key. */
export function headersFor(context: ClientContext, extra: Record<string, string> = {}): Record<string, string> {
  return { ...extra, ...(context.apiKey !== undefined ? { authorization: `Bearer ${context.apiKey}` } : {}) };
}

export function urlFor(context: ClientContext, path: string): string {
  return `${context.baseUrl}${path}`;
}

/**
 * Sends a request and returns the response, whatever its status. Rejects with `network_error`
 * when there is no answer at all, or with the AbortError of `init.signal`.
 */
export async function send(context: ClientContext, method: string, path: string, init: { headers?: Record<string, string>; body?: string; signal?: AbortSignal } = {}): Promise<Response> {
  try {
    return await context.fetch(urlFor(context, path), {
      method,
      headers: headersFor(context, init.headers),
      ...(init.body !== undefined ? { body: init.body } : {}),
      ...(init.signal !== undefined ? { signal: init.signal } : {}),
    });
  } catch (error) {
    if (init.signal?.aborted === true) throw error;
    throw new SluiceClientError('network_error', `${method} ${path}: no answer from the gateway at ${context.baseUrl || '(this origin)'} (${error instanceof Error ? error.message : String(error)}).`, { cause: error });
  }
}

/**
 * A JSON request: resolves with the parsed body of a 2xx answer (undefined when empty), rejects
 * with SluiceClientError otherwise (or with the AbortError of `signal`).
 */
export async function requestJson(context: ClientContext, method: string, path: string, options: { body?: unknown; signal?: AbortSignal } = {}): Promise<unknown> {
  const { body, signal } = options;
  const response = await send(context, method, path, {
    headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    ...(signal !== undefined ? { signal } : {}),
  });
  if (!response.ok) throw await errorFromResponse(response, `${method} ${path}`);
  const text = await response.text();
  try {
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch (error) {
    throw new SluiceClientError('protocol_error', `${method} ${path}: the answer is not JSON.`, { status: response.status, cause: error });
  }
}

/** Whether an error status is worth another try on a resume or a reconnect (overload, restart). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** POST /api/tickets: a single-use ticket (60 s by default) for a URL that cannot carry a header. */
export async function issueTicket(context: ClientContext, signal?: AbortSignal): Promise<string> {
  const body = await requestJson(context, 'POST', '/api/tickets', signal !== undefined ? { signal } : {});
  const ticket = (body as { ticket?: unknown } | undefined)?.ticket;
  if (typeof ticket !== 'string') throw new SluiceClientError('protocol_error', 'POST /api/tickets: the answer has no ticket.');
  return ticket;
}
