// Maps an OpenAI-compatible upstream's error statuses and error objects to Sluice error codes.
// Upstream messages are passed on for request errors (they explain what to fix) but never for
// authentication errors, whose text can quote part of the key.
import { SluiceError } from '../../errors/sluice-error.js';
import type { ErrorCode } from '../../errors/table.js';
import { errorBodySchema } from './schema.js';
import { scrub } from '../shared/secrets.js';

interface UpstreamErrorDetail {
  message?: string;
  code?: string;
  type?: string;
}

export function parseErrorDetail(text: string): UpstreamErrorDetail {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return text.trim() ? { message: text.trim().slice(0, 500) } : {};
  }
  return errorDetailOf(json);
}

export function errorDetailOf(json: unknown): UpstreamErrorDetail {
  const parsed = errorBodySchema.safeParse(json);
  if (!parsed.success) return {};
  const error = parsed.data.error;
  if (typeof error === 'string') return { message: error };
  const detail: UpstreamErrorDetail = {};
  if (error.message) detail.message = error.message;
  if (error.code !== null && error.code !== undefined) detail.code = String(error.code);
  if (error.type) detail.type = error.type;
  return detail;
}

export interface StatusErrorInput {
  status: number;
  detail: UpstreamErrorDetail;
  provider: string;
  retryAfterSeconds?: number | undefined;
  /** Secrets to scrub from any upstream text that is passed on. */
  secrets: readonly string[];
}

export function statusError(input: StatusErrorInput): SluiceError {
  const { status, detail, provider } = input;
  const code = codeForStatus(status, detail);
  const upstreamText = detail.message ? scrub(detail.message, input.secrets) : undefined;
  const passOn = code !== 'upstream_auth_failed' && upstreamText !== undefined;
  const message = passOn
    ? `Provider "${provider}" answered ${status.toString()}: ${upstreamText}`
    : `Provider "${provider}" answered ${status.toString()}. ${new SluiceError(code).message}`;
  return new SluiceError(code, {
    provider,
    message,
    upstreamStatus: status,
    ...(input.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: input.retryAfterSeconds }),
  });
}

/** An `{"error":…}` object that arrived inside the stream, after a 200. */
export function streamError(detail: UpstreamErrorDetail, provider: string, secrets: readonly string[]): SluiceError {
  const code: ErrorCode =
    detail.code === 'rate_limit_exceeded' ? 'upstream_rate_limited'
    : detail.code === 'insufficient_quota' ? 'upstream_quota_exceeded'
    : 'upstream_error';
  const text = detail.message ? scrub(detail.message, secrets) : 'no message';
  return new SluiceError(code, { provider, message: `Provider "${provider}" failed mid-stream: ${text}` });
}

function codeForStatus(status: number, detail: UpstreamErrorDetail): ErrorCode {
  if (status === 401 || status === 403) return 'upstream_auth_failed';
  if (status === 404) return 'upstream_model_not_found';
  if (status === 429) return detail.code === 'insufficient_quota' || detail.type === 'insufficient_quota' ? 'upstream_quota_exceeded' : 'upstream_rate_limited';
  if (status === 503) return 'upstream_unavailable';
  if (status >= 500) return 'upstream_error';
  if (status >= 400) return 'upstream_bad_request';
  return 'upstream_protocol_error';
}
