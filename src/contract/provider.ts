// The contract between the relay and a provider. An adapter builds and signs one upstream request,
// reads the response, and yields StreamEvents; it never writes a wire format for the client.
import type { Dispatcher } from 'undici';
import type { StreamEvent } from './stream-event.js';

export type ChatRole = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

/** A message as the OpenAI chat format defines it; content parts are passed through untouched. */
export interface ChatMessage {
  role: ChatRole;
  content: string | ReadonlyArray<Record<string, unknown>> | null;
  name?: string;
  tool_call_id?: string;
  tool_calls?: ReadonlyArray<Record<string, unknown>>;
}

/** The provider-neutral request an adapter receives. */
export interface ChatRequest {
  /** The provider's own model name (after alias resolution). */
  model: string;
  messages: readonly ChatMessage[];
  /** Sampling and tool fields in OpenAI's names (`temperature`, `max_tokens`, `tools`, …). */
  params: Readonly<Record<string, unknown>>;
  /** The end user the request is made for, when known. */
  userId?: string;
}

/**
 * An attempt's cancellation, as `CallContext.signal` carries it, without an AbortSignal: making a
 * signal and adding a listener to it cost several µs on every request before the upstream call,
 * so the HTTP shell listens here instead (decision 0046).
 */
export interface Cancellation {
  readonly aborted: boolean;
  /** Why, once aborted (a SluiceError from the generation). */
  readonly reason: unknown;
  /** Calls `listener` once, with the reason, when the attempt is cancelled; returns the function that stops that. */
  onAbort(listener: (reason: unknown) => void): () => void;
}

export interface CallContext {
  /**
   * Aborted when the generation is cancelled; adapters must stop all upstream I/O on it. The
   * generation makes it when it is first read.
   */
  readonly signal: AbortSignal;
  /** The same cancellation as `signal`, for an adapter that needs no AbortSignal; absent from some callers (providers/shared/cancellation.ts `cancellationOf`). */
  readonly cancellation?: Cancellation;
  /** `stream` asks the upstream for a stream; `complete` for one response (fewer events). */
  mode: 'stream' | 'complete';
  requestId: string;
  /** The W3C `traceparent` of this attempt's span, sent upstream when the request is traced. */
  traceparent?: string;
  /**
   * The provider key the pool router chose for this attempt (one of the entry's `apiKeys`); absent
   * means the adapter's first key. Never logged.
   */
  apiKey?: string;
}

/** One embeddings call, in OpenAI's terms (`POST /v1/embeddings`), after alias resolution. */
export interface EmbeddingRequest {
  /** The provider's own model name. */
  model: string;
  /** One text, several texts, one list of token ids, or several. */
  input: string | readonly string[] | readonly number[] | ReadonlyArray<readonly number[]>;
  /** `base64` vectors are passed through as the provider encodes them; default `float`. */
  encodingFormat?: 'float' | 'base64';
  dimensions?: number;
  /** The end user the request is made for, when known. */
  userId?: string;
}

/** What an embeddings call returns: one vector per input, in input order. */
export interface EmbeddingResult {
  data: { index: number; embedding: number[] | string }[];
  /** The model the provider says answered. */
  upstreamModel: string;
  /** Absent when the provider gave no counts. */
  usage?: { promptTokens: number; totalTokens: number };
}

export interface EmbeddingContext {
  /** Aborted when the client leaves or a timeout fires; the upstream request must end on it. */
  signal: AbortSignal;
  requestId: string;
  /** The provider key the pool router chose for this call, as in CallContext. Never logged. */
  apiKey?: string;
}

/** One batch: the events decoded from one upstream read. */
export type EventBatch = readonly StreamEvent[];

/**
 * Where a pushed upstream call delivers its events. After `end` or `fail` nothing more arrives.
 * Its methods never throw.
 */
export interface EventSink {
  events(batch: EventBatch): void;
  /** The upstream is done sending; if the answer has no terminal event, it was cut short. */
  end(): void;
  /** The call failed (a SluiceError, or an abort's reason). */
  fail(error: unknown): void;
}

/**
 * The push form of an upstream call (decision 0034): `pushTo` starts it and returns; its events go
 * to the sink as they are decoded. It is stopped only through the context's signal.
 */
export interface PushedEvents {
  pushTo(sink: EventSink): void;
}

/** What `stream` returns: batches to pull (an async iterable; simple adapters, tests) or to be pushed. */
export type UpstreamEvents = AsyncIterable<EventBatch> | PushedEvents;

export interface ProviderAdapter {
  /** The configured provider id (`openai`, `backup`, …), used in logs, metrics and errors. */
  readonly id: string;
  readonly type: string;
  /**
   * Runs one upstream call. Yields `start` once the upstream accepted the request, then content,
   * then at most one `usage`, then `end`. Failures are thrown as SluiceError, never yielded.
   *
   * Events come in batches: everything decoded from one upstream read together. Async iteration
   * is then paid once per network read instead of once per token, and the relay writes a batch
   * with one syscall (decision 0004 has the figures). The HTTP adapters push their batches instead
   * (`PushedEvents`): no promise and no suspended frame per stream (decision 0034).
   */
  stream(request: ChatRequest, context: CallContext): UpstreamEvents;
  /**
   * Present on providers that serve embeddings (openai, azure). Throws SluiceError on failure, as
   * `stream` does. A provider without it answers `POST /v1/embeddings` with `model_not_supported`.
   */
  embed?(request: EmbeddingRequest, context: EmbeddingContext): Promise<EmbeddingResult>;
  /** Model names this provider advertises in `GET /v1/models`. */
  readonly models: readonly string[];
  /** Releases pooled connections. */
  close(): Promise<void>;
}

/** What every adapter factory receives besides its own config. */
export interface ProviderDependencies {
  /** A dispatcher for tests and proxies; adapters create their own pool when absent. */
  dispatcher?: Dispatcher;
  now: () => number;
}

export interface Timeouts {
  readonly connectMs: number;
  readonly firstByteMs: number;
  readonly idleMs: number;
  /** 0 means no limit. */
  readonly totalMs: number;
}

/** Proxy settings read from HTTPS_PROXY / HTTP_PROXY / NO_PROXY at start. */
export interface OutboundProxy {
  readonly httpProxy?: string;
  readonly httpsProxy?: string;
  readonly noProxy?: string;
}
