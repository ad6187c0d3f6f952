// Traces on the official OpenTelemetry SDK: one SERVER span per request, one CLIENT span per
// upstream attempt under it, exported over OTLP/HTTP in batches. The context is passed explicitly
// (no global context manager, no patched modules): the request's span is the parent of its
// attempts, and each attempt's traceparent goes upstream (docs/tracing.md).
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import { ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE, ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { AttemptInfo, AttemptResult, AttemptTrace, GenerationTrace } from '../contract/generation-trace.js';
import type { Usage } from '../contract/stream-event.js';
import type { RequestEnd, RequestStart, RequestTrace, Tracing, TracingSettings } from './tracing.js';

const propagator = new W3CTraceContextPropagator();
type Carrier = Record<string, string>;
const getter: TextMapGetter<Carrier> = { get: (carrier, key) => carrier[key], keys: (carrier) => Object.keys(carrier) };
const setter: TextMapSetter<Carrier> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

export function createOtelTracing(settings: TracingSettings): Tracing {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sampleRatio) }),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: settings.otlpEndpoint, headers: { ...settings.headers } }), { scheduledDelayMillis: settings.exportDelayMs }),
    ],
  });
  const tracer = provider.getTracer('sluice');

  return {
    startRequest(request: RequestStart): RequestTrace {
      const carrier: Record<string, string> = {};
      if (request.traceparent !== undefined) carrier['traceparent'] = request.traceparent;
      if (request.tracestate !== undefined) carrier['tracestate'] = request.tracestate;
      const parent = propagator.extract(ROOT_CONTEXT, carrier, getter);
      const span = tracer.startSpan(
        request.name ?? `${request.method} ${request.route}`,
        { kind: SpanKind.SERVER, startTime: request.startedAt, attributes: { [ATTR_HTTP_REQUEST_METHOD]: request.method, [ATTR_HTTP_ROUTE]: request.route, 'sluice.request_id': request.requestId } },
        parent,
      );
      const context = trace.setSpan(ROOT_CONTEXT, span);
      return {
        generation: { attempt: (info) => startAttempt(tracer, context, info) } satisfies GenerationTrace,
        end(result: RequestEnd) {
          span.setAttributes(defined({
            [ATTR_HTTP_RESPONSE_STATUS_CODE]: result.status,
            'enduser.id': result.userId,
            'sluice.key_id': result.keyId,
            'gen_ai.request.model': result.model,
            'sluice.provider': result.provider,
            'sluice.outcome': result.outcome,
            'sluice.error_code': result.errorCode,
            'sluice.time_to_first_token_ms': result.timeToFirstTokenMs,
            ...usageAttributes(result.usage),
          }));
          if (result.status >= 500 || result.errorCode !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, ...(result.errorCode !== undefined ? { message: result.errorCode } : {}) });
          span.end();
        },
      };
    },
    close: () => provider.shutdown(),
  };
}

function startAttempt(tracer: ReturnType<BasicTracerProvider['getTracer']>, parent: Context, info: AttemptInfo): AttemptTrace {
  const startedAt = Date.now();
  const span: Span = tracer.startSpan(
    `upstream ${info.provider}`,
    { kind: SpanKind.CLIENT, attributes: defined({ 'sluice.provider': info.provider, 'gen_ai.request.model': info.model, 'sluice.deployment': info.deployment, 'sluice.key_id': info.keyId }) },
    parent,
  );
  const carrier: Record<string, string> = {};
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, setter);
  let ended = false;
  return {
    traceparent: carrier['traceparent'],
    firstToken() {
      if (ended) return;
      span.setAttribute('sluice.time_to_first_token_ms', Date.now() - startedAt);
      span.addEvent('first token');
    },
    end(result: AttemptResult) {
      if (ended) return;
      ended = true;
      span.setAttributes(defined({ 'sluice.outcome': result.outcome, 'sluice.error_code': result.errorCode, ...usageAttributes(result.usage) }));
      if (result.outcome === 'error' || result.outcome === 'retried') span.setStatus({ code: SpanStatusCode.ERROR, ...(result.errorCode !== undefined ? { message: result.errorCode } : {}) });
      span.end();
    },
  };
}

function usageAttributes(usage: Usage | undefined): Attributes {
  if (!usage) return {};
  return { 'gen_ai.usage.input_tokens': usage.promptTokens, 'gen_ai.usage.output_tokens': usage.completionTokens, 'sluice.usage_estimated': usage.estimated };
}

/** Drops undefined values, which OpenTelemetry would warn about. */
function defined(attributes: Record<string, string | number | boolean | undefined>): Attributes {
  const result: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) result[key] = value;
  return result;
}
