// The only internal currency of Sluice: every provider adapter turns its upstream's bytes into
// these events, and only encoders turn them into SSE, WebSocket frames or JSON.
import type { ErrorCode } from '../errors/table.js';
import { SluiceError } from '../errors/sluice-error.js';

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** True when Sluice counted the tokens itself because the provider gave no figures. */
  estimated: boolean;
  /**
   * The prompt tokens the provider served from its prompt cache, where it reports them (OpenAI
   * `prompt_tokens_details.cached_tokens`, Anthropic `cache_read_input_tokens`). Always part of
   * `promptTokens`; priced at the model's `cachedInput` price (docs/spend.md).
   */
  cachedPromptTokens?: number;
}

/** A serialisable error, as carried by an `error` event (it may cross a process boundary). */
export interface ErrorPayload {
  code: ErrorCode;
  message: string;
  retryable: boolean;
  param?: string;
  /** Seconds before a retry may succeed (sent as `Retry-After` when the error is a status). */
  retryAfterSeconds?: number;
}

export type StreamEvent =
  /** The provider accepted the request; nothing has been generated yet. */
  | { type: 'start'; upstreamModel: string; responseHeaders?: Readonly<Record<string, string>> }
  | { type: 'text-delta'; text: string }
  /** A piece of one tool call; `argumentsDelta` pieces concatenate per `index`. */
  | { type: 'tool-call-delta'; index: number; id?: string; name?: string; argumentsDelta?: string }
  /**
   * One event of a provider whose events are relayed as they come (signed-http: a company's own
   * agent), with the caller's user id added to JSON objects. The native API sends it as an
   * `upstream` event; the OpenAI-compatible route has no place for it and leaves it out.
   */
  | { type: 'upstream-event'; event?: string; data: unknown }
  /** At most once, before `end`. */
  | { type: 'usage'; usage: Usage }
  /**
   * The answer is complete. Always the last event of a successful generation. `stopSequence`: the
   * stop sequence that ended it, when the provider says which (Anthropic's `stop_sequence`).
   */
  | { type: 'end'; finishReason: FinishReason; stopSequence?: string }
  /** The generation failed. Always the last event of a failed or cancelled generation. */
  | { type: 'error'; error: ErrorPayload };

export type StreamEventType = StreamEvent['type'];

export function isTerminal(event: StreamEvent): boolean {
  return event.type === 'end' || event.type === 'error';
}

export function errorPayload(error: SluiceError): ErrorPayload {
  const payload: ErrorPayload = { code: error.code, message: error.message, retryable: error.retryable };
  if (error.param !== undefined) payload.param = error.param;
  if (error.retryAfterSeconds !== undefined) payload.retryAfterSeconds = error.retryAfterSeconds;
  return payload;
}
