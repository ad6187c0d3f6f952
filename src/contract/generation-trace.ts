// What a generation tells a tracer: each upstream attempt as it starts, its first token, and how
// it ended. The generation calls these only when the request is traced; untraced requests carry
// no trace object and pay one property check per attempt (docs/tracing.md).
import type { Usage } from './stream-event.js';

export interface AttemptInfo {
  readonly provider: string;
  /** The provider's own model name. */
  readonly model: string;
  /** `provider/model` of the pool's deployment, when the model is a pool. */
  readonly deployment?: string;
  /** `provider#N`: which of the provider's keys was used (never the key). */
  readonly keyId?: string;
}

export interface AttemptResult {
  /** `retried`: it failed before the first token and the next deployment or fallback was tried. */
  readonly outcome: 'completed' | 'error' | 'cancelled' | 'retried';
  readonly errorCode?: string;
  readonly usage?: Usage;
}

export interface AttemptTrace {
  /** The W3C `traceparent` to send upstream with this attempt. */
  readonly traceparent: string | undefined;
  firstToken(): void;
  end(result: AttemptResult): void;
}

export interface GenerationTrace {
  attempt(info: AttemptInfo): AttemptTrace;
}
