// Spark's error codes (`header.code != 0`) and handshake refusals, mapped to Sluice codes. The
// `sid` stays in the message: iFlytek support asks for it.
import { SluiceError } from '../../errors/sluice-error.js';
import type { ErrorCode } from '../../errors/table.js';

const codeBySparkCode: Readonly<Record<number, ErrorCode>> = {
  10013: 'upstream_content_filtered', // input failed content review
  10014: 'upstream_content_filtered', // output failed content review
  10019: 'upstream_content_filtered', // content may be sensitive
  10907: 'upstream_bad_request', // token count over the limit
  10163: 'upstream_bad_request', // request parameter error
  11200: 'upstream_auth_failed', // no permission for this function, or a wrong app id
  11201: 'upstream_quota_exceeded', // daily quota exhausted
  11202: 'upstream_rate_limited', // QPS over the limit
  11203: 'upstream_rate_limited', // concurrency over the limit
  10222: 'upstream_unavailable', // service busy / network error
  10110: 'upstream_unavailable', // service busy
};

export function sparkFrameError(code: number, message: string, sid: string | undefined, provider: string): SluiceError {
  return new SluiceError(codeBySparkCode[code] ?? 'upstream_error', {
    provider,
    message: `Provider "${provider}" (Spark) answered code ${code.toString()}: ${message}${sid ? ` (sid ${sid})` : ''}`,
  });
}

/** A refused WebSocket handshake: 401 bad signature or key, 403 a date more than 300 s off. */
export function sparkHandshakeError(status: number, provider: string): SluiceError {
  if (status === 403) {
    return new SluiceError('upstream_auth_failed', {
      provider,
      upstreamStatus: status,
      message: `Provider "${provider}" (Spark) refused the handshake with 403: the signed date is more than 300 s from iFlytek's clock. Check this machine's clock (NTP).`,
    });
  }
  if (status === 401) {
    return new SluiceError('upstream_auth_failed', { provider, upstreamStatus: status, message: `Provider "${provider}" (Spark) refused the handshake with 401: check apiKey and apiSecret.` });
  }
  if (status === 404) return new SluiceError('upstream_model_not_found', { provider, upstreamStatus: status, message: `Provider "${provider}" (Spark) has no endpoint at that version path (404).` });
  if (status === 429) return new SluiceError('upstream_rate_limited', { provider, upstreamStatus: status });
  return new SluiceError(status >= 500 ? 'upstream_unavailable' : 'upstream_error', { provider, upstreamStatus: status, message: `Provider "${provider}" (Spark) refused the handshake with ${status.toString()}.` });
}
