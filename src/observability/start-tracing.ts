// Loads the OpenTelemetry tracer only when the config asks for traces, so a gateway without
// `tracing:` never imports the SDK (test/tracing.test.ts checks which modules a process loaded).
import type { Tracing, TracingSettings } from './tracing.js';

export async function startTracing(settings: TracingSettings | undefined): Promise<Tracing | undefined> {
  if (!settings) return undefined;
  const { createOtelTracing } = await import('./otel-tracing.js');
  return createOtelTracing(settings);
}
