// The tracing seam: what the request handler and the generations need of a tracer. The OpenTelemetry
// implementation (otel-tracing.ts) is loaded only when `tracing.otlpEndpoint` is set, by
// start-tracing.ts; with tracing off nothing of it is imported and requests carry no trace.
import type { GenerationTrace } from '../contract/generation-trace.js';
import type { Usage } from '../contract/stream-event.js';

export interface TracingSettings {
  readonly otlpEndpoint: string;
  readonly sampleRatio: number;
  readonly serviceName: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly exportDelayMs: number;
}

export interface RequestStart {
  /** The span's name; `<method> <route>` when absent. */
  readonly name?: string;
  readonly method: string;
  readonly route: string;
  readonly requestId: string;
  /** When the request arrived (ms since the epoch): the span starts there. */
  readonly startedAt: number;
  /** The caller's W3C trace context, if it sent one. */
  readonly traceparent?: string | undefined;
  readonly tracestate?: string | undefined;
}

/** What the request ended with; fields are undefined when the request never got that far. */
export interface RequestEnd {
  readonly status: number;
  readonly userId?: string | undefined;
  readonly keyId?: string | undefined;
  readonly model?: string | undefined;
  readonly provider?: string | undefined;
  readonly outcome?: string | undefined;
  readonly errorCode?: string | undefined;
  readonly timeToFirstTokenMs?: number | undefined;
  readonly usage?: Usage | undefined;
}

export interface RequestTrace {
  /** Hands the request's span to the generation it starts, as the parent of its attempts. */
  readonly generation: GenerationTrace;
  end(result: RequestEnd): void;
}

export interface Tracing {
  startRequest(request: RequestStart): RequestTrace;
  /** Sends what is still batched, then stops. */
  close(): Promise<void>;
}
