// Maps Anthropic error types (HTTP statuses, and `event: error` inside a stream) to Sluice codes.
import { SluiceError } from '../../errors/sluice-error.js';
import type { ErrorCode } from '../../errors/table.js';
import { scrub } from '../shared/secrets.js';

export interface AnthropicErrorDetail {
  type?: string;
  message?: string;
}

export function parseErrorDetail(text: string): AnthropicErrorDetail {
  try {
    return errorDetailOf(JSON.parse(text));
  } catch {
    return text.trim() ? { message: text.trim().slice(0, 500) } : {};
  }
}

export function errorDetailOf(json: unknown): AnthropicErrorDetail {
  const error = typeof json === 'object' && json !== null ? (json as Record<string, unknown>)['error'] : undefined;
  if (typeof error !== 'object' || error === null) return {};
  const record = error as Record<string, unknown>;
  const detail: AnthropicErrorDetail = {};
  if (typeof record['type'] === 'string') detail.type = record['type'];
  if (typeof record['message'] === 'string') detail.message = record['message'];
  return detail;
}

const codeByType: Record<string, ErrorCode> = {
  invalid_request_error: 'upstream_bad_request',
  request_too_large: 'upstream_bad_request',
  authentication_error: 'upstream_auth_failed',
  permission_error: 'upstream_auth_failed',
  not_found_error: 'upstream_model_not_found',
  rate_limit_error: 'upstream_rate_limited',
  overloaded_error: 'upstream_unavailable',
  api_error: 'upstream_error',
};

function codeForStatus(status: number): ErrorCode {
  if (status === 401 || status === 403) return 'upstream_auth_failed';
  if (status === 404) return 'upstream_model_not_found';
  if (status === 429) return 'upstream_rate_limited';
  if (status === 529 || status === 503) return 'upstream_unavailable';
  if (status >= 500) return 'upstream_error';
  return 'upstream_bad_request';
}

export interface AnthropicErrorInput {
  status?: number;
  detail: AnthropicErrorDetail;
  provider: string;
  secrets: readonly string[];
  retryAfterSeconds?: number | undefined;
}

/** One mapping for both an error status and an `event: error` in the stream. */
export function anthropicError(input: AnthropicErrorInput): SluiceError {
  const { detail, provider, status } = input;
  const code = (detail.type ? codeByType[detail.type] : undefined) ?? (status === undefined ? 'upstream_error' : codeForStatus(status));
  const where = status === undefined ? 'failed mid-stream' : `answered ${status.toString()}`;
  // Authentication messages are not passed on: they can quote part of the key.
  const text = code !== 'upstream_auth_failed' && detail.message ? `: ${scrub(detail.message, input.secrets)}` : `. ${new SluiceError(code).message}`;
  return new SluiceError(code, {
    provider,
    message: `Provider "${provider}" ${where}${detail.type ? ` (${detail.type})` : ''}${text}`,
    ...(status === undefined ? {} : { upstreamStatus: status }),
    ...(input.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: input.retryAfterSeconds }),
  });
}
