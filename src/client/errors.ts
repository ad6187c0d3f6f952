// The one error class of the client library, and how an HTTP error answer of the gateway (an
// OpenAI-shaped body `{"error":{"message","type","param","code"}}`) becomes one. Errors that
// arrive inside a stream are not thrown: they are the stream's last `error` event.

/**
 * Codes the client itself produces, besides the gateway's own (docs/errors.md):
 * - `network_error`: no HTTP answer at all (the gateway is unreachable, DNS, CORS, TLS).
 * - `stream_interrupted`: a stream dropped and could not be resumed (no generation id yet, or
 *   `retry.maxAttempts` reconnections in a row failed).
 * - `protocol_error`: the gateway sent something this library cannot read (not JSON, wrong shape).
 * - `websocket_unavailable`: `transport: 'ws'` without a WebSocket constructor.
 * - `cancelled`: only from `ChatStream.text()`, when the chat was cancelled.
 */
export type ClientErrorCode = 'network_error' | 'stream_interrupted' | 'protocol_error' | 'websocket_unavailable';

/** Thrown for HTTP errors before a stream, and for failures the client cannot recover from. */
export class SluiceClientError extends Error {
  override readonly name = 'SluiceClientError';
  /** The HTTP status, when the gateway answered with an error status. */
  readonly status?: number;
  /** The gateway's error code (e.g. `invalid_api_key`), or one of {@link ClientErrorCode}. */
  readonly code: string;
  /** From the `Retry-After` header (seconds), when the gateway sent one and it is readable. */
  readonly retryAfterSeconds?: number;
  /** The request field the gateway named as the problem, if any. */
  readonly param?: string;

  constructor(code: string, message: string, details: { status?: number; retryAfterSeconds?: number; param?: string; cause?: unknown } = {}) {
    super(message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.code = code;
    if (details.status !== undefined) this.status = details.status;
    if (details.retryAfterSeconds !== undefined) this.retryAfterSeconds = details.retryAfterSeconds;
    if (details.param !== undefined) this.param = details.param;
  }
}

/**
 * Reads an error answer (any status that is not 2xx) into a SluiceClientError. A body that is
 * not the gateway's error shape (a proxy's HTML page) still gives the status, with code `http_<status>`.
 */
export async function errorFromResponse(response: Response, what: string): Promise<SluiceClientError> {
  const text = await response.text().catch(() => '');
  const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
  const extra = { status: response.status, ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}) };
  const body = parseErrorBody(text);
  if (body) return new SluiceClientError(body.code, body.message, { ...extra, ...(body.param !== undefined ? { param: body.param } : {}) });
  const shown = text.trim().slice(0, 200);
  return new SluiceClientError(`http_${response.status.toString()}`, `${what}: HTTP ${response.status.toString()}${shown !== '' ? ` (${shown})` : ''}`, extra);
}

function parseErrorBody(text: string): { code: string; message: string; param?: string } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(value) || !isRecord(value['error'])) return undefined;
  const { code, message, param } = value['error'];
  if (typeof code !== 'string' || typeof message !== 'string') return undefined;
  return { code, message, ...(typeof param === 'string' ? { param } : {}) };
}

/** Retry-After in seconds: only the delta-seconds form, which is what the gateway sends. */
function parseRetryAfter(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

