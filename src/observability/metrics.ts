// Prometheus metrics, in a registry of the app's own (no global state, so tests can run several apps).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { GenerationSummary } from '../contract/generation-summary.js';

export interface Metrics {
  registry: Registry;
  requests: Counter<'route' | 'status' | 'model' | 'provider'>;
  activeStreams: Gauge;
  timeToFirstToken: Histogram<'provider' | 'model'>;
  generationDuration: Histogram<'provider' | 'model' | 'outcome'>;
  upstreamErrors: Counter<'provider' | 'code'>;
  tokens: Counter<'provider' | 'model' | 'kind'>;
  /** Upstream attempts per pool deployment (`provider/model`) and key id (`provider#N`). */
  deploymentAttempts: Counter<'deployment' | 'key'>;
  /** Attempts that failed before their first token, by deployment, key id and error code. */
  deploymentErrors: Counter<'deployment' | 'key' | 'code'>;
  /** From the start of an attempt to its first answer event, per deployment. */
  deploymentTimeToFirstToken: Histogram<'deployment'>;
  recordGeneration(model: string, summary: GenerationSummary): void;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'sluice_' });
  const registers = [registry];
  const requests = new Counter({ name: 'sluice_http_requests_total', help: 'HTTP requests by route, status, model and provider.', labelNames: ['route', 'status', 'model', 'provider'] as const, registers });
  const activeStreams = new Gauge({ name: 'sluice_active_streams', help: 'Streaming responses currently open.', registers });
  const timeToFirstToken = new Histogram({
    name: 'sluice_time_to_first_token_seconds',
    help: 'From the start of a generation to its first content event.',
    labelNames: ['provider', 'model'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32],
    registers,
  });
  const generationDuration = new Histogram({
    name: 'sluice_generation_duration_seconds',
    help: 'Whole generation time, by outcome.',
    labelNames: ['provider', 'model', 'outcome'] as const,
    buckets: [0.1, 0.5, 1, 2, 5, 10, 20, 40, 80, 160],
    registers,
  });
  const upstreamErrors = new Counter({ name: 'sluice_upstream_errors_total', help: 'Upstream failures by provider and error code (fallbacks included).', labelNames: ['provider', 'code'] as const, registers });
  const tokens = new Counter({ name: 'sluice_tokens_total', help: 'Tokens by provider, model and kind (prompt or completion).', labelNames: ['provider', 'model', 'kind'] as const, registers });
  const deploymentAttempts = new Counter({ name: 'sluice_deployment_attempts_total', help: 'Upstream attempts by pool deployment (provider/model) and provider key id.', labelNames: ['deployment', 'key'] as const, registers });
  const deploymentErrors = new Counter({ name: 'sluice_deployment_errors_total', help: 'Upstream attempts that failed before their first token, by deployment, key id and error code.', labelNames: ['deployment', 'key', 'code'] as const, registers });
  const deploymentTimeToFirstToken = new Histogram({
    name: 'sluice_deployment_time_to_first_token_seconds',
    help: 'From the start of an upstream attempt to its first answer event, per deployment.',
    labelNames: ['deployment'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32],
    registers,
  });

  return {
    registry,
    deploymentAttempts,
    deploymentErrors,
    deploymentTimeToFirstToken,
    requests,
    activeStreams,
    timeToFirstToken,
    generationDuration,
    upstreamErrors,
    tokens,
    recordGeneration(model, summary) {
      const provider = summary.provider;
      for (const fallback of summary.fallbacks) upstreamErrors.inc({ provider: fallback.provider, code: fallback.code });
      if (summary.errorCode && summary.errorCode.startsWith('upstream_')) upstreamErrors.inc({ provider, code: summary.errorCode });
      if (summary.timeToFirstTokenMs !== undefined) timeToFirstToken.observe({ provider, model }, summary.timeToFirstTokenMs / 1000);
      generationDuration.observe({ provider, model, outcome: summary.outcome }, summary.durationMs / 1000);
      tokens.inc({ provider, model, kind: 'prompt' }, summary.usage.promptTokens);
      tokens.inc({ provider, model, kind: 'completion' }, summary.usage.completionTokens);
    },
  };
}
