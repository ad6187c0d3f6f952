// Baidu Qianfan `{"error_code","error_msg"}` bodies (they may come with HTTP 200, as JSON or as an
// SSE data line) mapped to Sluice codes: limits → 429, parameter errors → 400, others → 502.
import { SluiceError } from '../../errors/sluice-error.js';
import type { ErrorCode } from '../../errors/table.js';
import { numberAt, stringAt } from '../shared/json.js';
import { scrub } from '../shared/secrets.js';

/** Codes after which a new access token is fetched and the request retried once. */
export const tokenErrorCodes: ReadonlySet<number> = new Set([110, 111]);

const codeByQianfanCode: Readonly<Record<number, ErrorCode>> = {
  4: 'upstream_quota_exceeded', // cluster over its limit
  17: 'upstream_quota_exceeded', // daily request limit
  18: 'upstream_rate_limited', // QPS limit
  19: 'upstream_quota_exceeded', // total request limit
  110: 'upstream_auth_failed', // access token invalid
  111: 'upstream_auth_failed', // access token expired
  336000: 'upstream_error', // internal error
  336001: 'upstream_bad_request', // invalid argument
  336002: 'upstream_bad_request', // invalid JSON
  336003: 'upstream_bad_request', // parameter error
  336006: 'upstream_bad_request', // messages must alternate / be odd
  336007: 'upstream_bad_request',
  336100: 'upstream_unavailable', // server under high load, retry
  336501: 'upstream_bad_request', // too many tokens
  336502: 'upstream_bad_request', // too many tokens
  336503: 'upstream_content_filtered',
};

/** The error carried by a response object, if it is one. */
export function qianfanErrorOf(json: unknown): { code: number; message: string } | undefined {
  const code = numberAt(json, 'error_code');
  if (code === undefined || code === 0) return undefined;
  return { code, message: stringAt(json, 'error_msg') ?? 'no message' };
}

export function qianfanError(code: number, message: string, provider: string, secrets: readonly string[]): SluiceError {
  return new SluiceError(codeByQianfanCode[code] ?? 'upstream_error', {
    provider,
    message: `Provider "${provider}" (Qianfan) answered error_code ${code.toString()}: ${scrub(message, secrets)}`,
  });
}
