// Error statuses of a company endpoint: the body's own message is passed on (scrubbed of the
// configured secrets), except for authentication failures.
import { SluiceError } from '../../errors/sluice-error.js';
import type { ErrorCode } from '../../errors/table.js';
import { scrub } from '../shared/secrets.js';

export function statusError(status: number, body: string, provider: string, secrets: readonly string[]): SluiceError {
  const code: ErrorCode =
    status === 401 || status === 403 ? 'upstream_auth_failed'
    : status === 404 ? 'upstream_model_not_found'
    : status === 429 ? 'upstream_rate_limited'
    : status === 503 ? 'upstream_unavailable'
    : status >= 500 ? 'upstream_error'
    : 'upstream_bad_request';
  const detail = code === 'upstream_auth_failed' ? 'check the auth settings of this provider (keys, clock for ak-sk-sha256)' : scrub(body.trim().slice(0, 300), secrets) || 'no body';
  return new SluiceError(code, { provider, upstreamStatus: status, message: `Provider "${provider}" answered ${status.toString()}: ${detail}` });
}
