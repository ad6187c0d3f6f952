// Every error Sluice can report, in one table: code → HTTP status, OpenAI error type, default
// message, and whether retrying the same request may succeed. Routes, encoders and logs read this
// table; nothing else decides a status. docs/errors.md is generated from it (npm run docs:errors).

/** The `type` field of an OpenAI-style error body. */
export type OpenAiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'api_error'
  | 'timeout_error'
  | 'server_error';

export interface ErrorSpec {
  readonly status: number;
  readonly type: OpenAiErrorType;
  readonly message: string;
  readonly retryable: boolean;
}

export const errorTable = {
  // The caller's request.
  invalid_json: { status: 400, type: 'invalid_request_error', message: 'The request body is not valid JSON.', retryable: false },
  invalid_request: { status: 400, type: 'invalid_request_error', message: 'The request is invalid.', retryable: false },
  body_too_large: { status: 413, type: 'invalid_request_error', message: 'The request body is larger than the configured limit.', retryable: false },
  model_not_supported: { status: 400, type: 'invalid_request_error', message: 'The model\'s provider does not serve this kind of request (embeddings are served by openai and azure providers).', retryable: false },
  model_not_found: { status: 404, type: 'not_found_error', message: 'The model does not exist or is not configured on this gateway.', retryable: false },
  generation_not_found: { status: 404, type: 'not_found_error', message: 'No such generation, or it finished longer ago than the retention window.', retryable: false },
  conversation_not_found: { status: 404, type: 'not_found_error', message: 'No such conversation for this user.', retryable: false },
  response_not_found: { status: 404, type: 'not_found_error', message: 'No such response for this user: it was never stored (store: false), was deleted, or belongs to someone else.', retryable: false },
  not_found: { status: 404, type: 'not_found_error', message: 'No such route.', retryable: false },
  invalid_frame: { status: 400, type: 'invalid_request_error', message: 'The WebSocket frame is invalid.', retryable: false },
  config_invalid: { status: 400, type: 'invalid_request_error', message: 'The new configuration has problems; the running one stays.', retryable: false },
  reload_unavailable: { status: 409, type: 'invalid_request_error', message: 'This gateway was not started from a config file, so there is nothing to reload.', retryable: false },
  method_not_allowed: { status: 405, type: 'invalid_request_error', message: 'This route does not accept that method.', retryable: false },
  // Who is calling, and how much they may.
  missing_credentials: { status: 401, type: 'authentication_error', message: 'No credential: send Authorization: Bearer <key or token>.', retryable: false },
  invalid_api_key: { status: 401, type: 'authentication_error', message: 'The API key is not valid.', retryable: false },
  api_key_revoked: { status: 401, type: 'authentication_error', message: 'The API key was revoked.', retryable: false },
  api_key_expired: { status: 401, type: 'authentication_error', message: 'The API key has expired.', retryable: false },
  invalid_token: { status: 401, type: 'authentication_error', message: 'The bearer token is not valid.', retryable: false },
  invalid_ticket: { status: 401, type: 'authentication_error', message: 'The ticket is unknown, used or expired; ask POST /api/tickets for a new one.', retryable: false },
  forbidden: { status: 403, type: 'permission_error', message: 'This credential may not do that.', retryable: false },
  model_not_allowed: { status: 403, type: 'permission_error', message: 'The API key or token does not allow this model.', retryable: false },
  rate_limited: { status: 429, type: 'rate_limit_error', message: 'A rate limit was reached.', retryable: true },
  quota_exceeded: { status: 429, type: 'rate_limit_error', message: 'A token quota is used up.', retryable: false },
  budget_exceeded: { status: 429, type: 'rate_limit_error', message: 'A spending budget is used up.', retryable: false },
  identity_provider_unavailable: { status: 503, type: 'server_error', message: 'The identity provider\'s key set (JWKS) could not be fetched to check the token.', retryable: true },
  store_unavailable: { status: 503, type: 'server_error', message: 'The gateway\'s database is unavailable.', retryable: true },
  // The gateway itself.
  shutting_down: { status: 503, type: 'server_error', message: 'The gateway is shutting down; retry on another instance.', retryable: true },
  client_too_slow: { status: 500, type: 'server_error', message: 'The client read the stream too slowly; the gateway stopped buffering it.', retryable: true },
  cancelled: { status: 499, type: 'api_error', message: 'The generation was cancelled.', retryable: false },
  internal_error: { status: 500, type: 'server_error', message: 'The gateway failed unexpectedly.', retryable: true },
  generation_interrupted: { status: 502, type: 'api_error', message: 'The gateway node that was running this generation stopped before the answer finished; what it produced up to then was delivered.', retryable: true },
  // The upstream provider.
  upstream_auth_failed: { status: 502, type: 'api_error', message: 'The provider rejected the gateway\'s credentials; check the provider key in the gateway config.', retryable: false },
  upstream_content_filtered: { status: 400, type: 'invalid_request_error', message: 'The provider\'s content review refused the request or the answer.', retryable: false },
  upstream_bad_request: { status: 400, type: 'invalid_request_error', message: 'The provider rejected the request.', retryable: false },
  upstream_model_not_found: { status: 404, type: 'not_found_error', message: 'The provider does not know this model.', retryable: false },
  upstream_rate_limited: { status: 429, type: 'rate_limit_error', message: 'The provider is rate limiting requests.', retryable: true },
  upstream_quota_exceeded: { status: 429, type: 'rate_limit_error', message: 'The provider account has run out of quota.', retryable: false },
  provider_limit_reached: { status: 429, type: 'rate_limit_error', message: 'The provider\'s request or token budget set on this gateway (providers.<id>.limits) stayed used up for as long as the request could wait.', retryable: true },
  upstream_unavailable: { status: 503, type: 'api_error', message: 'The provider is unavailable.', retryable: true },
  upstream_error: { status: 502, type: 'api_error', message: 'The provider failed.', retryable: true },
  upstream_connect_failed: { status: 502, type: 'api_error', message: 'Could not connect to the provider.', retryable: true },
  upstream_connect_timeout: { status: 504, type: 'timeout_error', message: 'Connecting to the provider timed out.', retryable: true },
  upstream_first_byte_timeout: { status: 504, type: 'timeout_error', message: 'The provider sent nothing before the first-byte timeout.', retryable: true },
  upstream_idle_timeout: { status: 504, type: 'timeout_error', message: 'The provider stopped sending in the middle of the answer (idle timeout).', retryable: true },
  upstream_total_timeout: { status: 504, type: 'timeout_error', message: 'The answer took longer than the total timeout.', retryable: true },
  upstream_protocol_error: { status: 502, type: 'api_error', message: 'The provider sent a response the gateway could not read.', retryable: true },
  upstream_event_too_large: { status: 502, type: 'api_error', message: 'The provider sent an event larger than the configured limit.', retryable: false },
  upstream_stream_interrupted: { status: 502, type: 'api_error', message: 'The provider\'s stream ended before the answer was complete.', retryable: true },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorTable;

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(errorTable, value);
}
