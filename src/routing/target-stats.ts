// Recent figures of each upstream target on this node, for GET /admin/deployments: requests,
// errors by code, and latency and time-to-first-token percentiles over the last minutes. Kept in
// memory per node (a cluster's health is shared; these figures describe what this node saw), as a
// bounded list of samples per target that drops what is older than the window.
import type { ErrorCode } from '../errors/table.js';

export interface TargetStatsSummary {
  /** Attempts started in the window. */
  readonly requests: number;
  /** Failed attempts in the window, by error code. */
  readonly errors: Readonly<Partial<Record<ErrorCode, number>>>;
  /** Whole attempt time (ms) of the attempts that ended in the window; null without any. */
  readonly latencyMs: { readonly p50: number | null; readonly p95: number | null };
  /** Time to the first answer event (ms); null without any. */
  readonly timeToFirstTokenMs: { readonly p50: number | null; readonly p95: number | null };
}

interface Sample {
  readonly startedAt: number;
  firstTokenMs?: number;
  durationMs?: number;
  code?: ErrorCode;
}

export interface RunningSample {
  firstToken(): void;
  error(code: ErrorCode): void;
  end(): void;
}

export interface TargetStats {
  /** Starts one attempt on every target of `ids` (a deployment and its key). */
  start(ids: readonly string[]): RunningSample;
  summary(id: string): TargetStatsSummary;
}

/** At most this many samples per target: a busy target's window is then the latest ones. */
const maxSamples = 2000;
/**
 * A target's list is pruned when it reaches this length, not on every start: at the cap, pruning
 * on each start moved the whole list (`splice(0, 1)` of 2000 entries) once per request and target
 * (docs/decisions/0025-per-request-path.md). `summary` still prunes before it reads.
 */
const pruneAtSamples = 2 * maxSamples;

/** The value below which `share` of the sorted values fall (nearest rank). */
function percentile(sorted: readonly number[], share: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(share * sorted.length) - 1)] ?? null;
}

export function createTargetStats(options: { readonly now: () => number; readonly windowMs: number }): TargetStats {
  const { now, windowMs } = options;
  const samplesOf = new Map<string, Sample[]>();

  function prune(samples: Sample[]): void {
    const oldest = now() - windowMs;
    let drop = 0;
    while (drop < samples.length && (samples[drop]?.startedAt ?? 0) < oldest) drop += 1;
    if (samples.length - drop > maxSamples) drop = samples.length - maxSamples;
    if (drop > 0) samples.splice(0, drop);
  }

  return {
    start(ids) {
      const sample: Sample = { startedAt: now() };
      for (const id of ids) {
        let samples = samplesOf.get(id);
        if (!samples) samplesOf.set(id, (samples = []));
        samples.push(sample);
        if (samples.length >= pruneAtSamples) prune(samples);
      }
      return {
        firstToken: () => (sample.firstTokenMs ??= now() - sample.startedAt),
        error: (code) => (sample.code ??= code),
        end: () => (sample.durationMs ??= now() - sample.startedAt),
      };
    },
    summary(id) {
      const samples = samplesOf.get(id) ?? [];
      prune(samples);
      const errors: Partial<Record<ErrorCode, number>> = {};
      for (const sample of samples) if (sample.code !== undefined) errors[sample.code] = (errors[sample.code] ?? 0) + 1;
      const sorted = (values: (number | undefined)[]) => values.filter((value): value is number => value !== undefined).sort((a, b) => a - b);
      const durations = sorted(samples.map((sample) => sample.durationMs));
      const firstTokens = sorted(samples.map((sample) => sample.firstTokenMs));
      return {
        requests: samples.length,
        errors,
        latencyMs: { p50: percentile(durations, 0.5), p95: percentile(durations, 0.95) },
        timeToFirstTokenMs: { p50: percentile(firstTokens, 0.5), p95: percentile(firstTokens, 0.95) },
      };
    },
  };
}
