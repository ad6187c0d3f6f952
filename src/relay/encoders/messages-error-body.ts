// The Anthropic-shaped error body of the Messages API (docs/messages.md, "Errors"): `{type:
// 'error', error: {type, message}}`, used before the first byte (as the response body, with the
// error table's status) and after it (as the data of an `event: error`), so the official
// `@anthropic-ai/sdk` raises its typed error either way.
import { errorTable, type ErrorCode } from '../../errors/table.js';
import type { SluiceError } from '../../errors/sluice-error.js';
import type { ErrorPayload } from '../../contract/stream-event.js';

/** The `error.type` values of Anthropic's API, which its SDK maps to error classes. */
export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'api_error'
  | 'timeout_error'
  | 'overloaded_error';

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: AnthropicErrorType; message: string };
}

/** The Anthropic type of an error code: the OpenAI type of the table where both APIs have it. */
export function anthropicErrorType(code: ErrorCode): AnthropicErrorType {
  if (code === 'body_too_large') return 'request_too_large';
  // Anthropic's 529: the SDK retries it, as it should a provider that is down.
  if (code === 'upstream_unavailable') return 'overloaded_error';
  const type = errorTable[code].type;
  return type === 'server_error' ? 'api_error' : type;
}

export function anthropicErrorBody(error: SluiceError | ErrorPayload): AnthropicErrorBody {
  // Anthropic's body has no code or param field: the Sluice code leads the message, which
  // already names the field when one is wrong.
  return { type: 'error', error: { type: anthropicErrorType(error.code), message: `${error.code}: ${error.message}` } };
}
