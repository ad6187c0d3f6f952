// GET /admin/overview: what the console's Overview shows. Counts come from the usage rows, which
// every node writes to the one store, so the charts cover the whole cluster and survive restarts;
// active streams are this node's running generations and hub connections are the hub's count
// (every node's, in cluster mode).
import { z } from 'zod';
import type { Hub } from '../../hub/hub.js';
import type { GenerationService } from '../../relay/generation-service.js';
import { formatMicros } from '../../contract/cost.js';
import { ttftBinBoundsMs, type UsageStore, type UsageTimelineBucket } from '../../store/store.js';
import { sendJson } from '../respond.js';
import type { RouteHandler } from '../router.js';
import { parseWith } from '../validate.js';

const minuteMs = 60_000;
const dayMs = 86_400_000;

/** The two windows: the last hour in 1-minute buckets, the last day in 15-minute buckets. */
export const overviewWindows = {
  hour: { bucketMs: minuteMs, buckets: 60 },
  day: { bucketMs: 15 * minuteMs, buckets: 96 },
} as const;

const overviewQuerySchema = z.strictObject({
  window: z.enum(['hour', 'day'], { error: 'must be hour or day' }).optional(),
});

/**
 * The `quantile` (0 to 1) of the times counted in `bins` (bounds {@link ttftBinBoundsMs}, one
 * more bin for what is above the last), interpolated linearly inside the bin it falls in, as
 * Prometheus's histogram_quantile does; the open last bin answers its lower bound. Null when
 * nothing was counted.
 */
export function quantileFromBins(bins: readonly number[], quantile: number): number | null {
  const total = bins.reduce((sum, count) => sum + count, 0);
  if (total === 0) return null;
  const rank = quantile * total;
  let seen = 0;
  for (const [index, count] of bins.entries()) {
    if (count === 0 || seen + count < rank) {
      seen += count;
      continue;
    }
    const lower = index === 0 ? 0 : (ttftBinBoundsMs[index - 1] ?? 0);
    const upper = ttftBinBoundsMs[index];
    if (upper === undefined) return lower;
    return Math.round(lower + ((upper - lower) * (rank - seen)) / count);
  }
  return ttftBinBoundsMs.at(-1) ?? null;
}

export interface AdminOverviewDependencies {
  readonly usage: UsageStore;
  readonly generations: Pick<GenerationService, 'active'>;
  readonly hub: Pick<Hub, 'counts'>;
  readonly now: () => number;
}

/**
 * `{ window, bucketMs, now: { activeStreams, hubConnections, requestsToday, tokensToday, costToday },
 * series: { start, requestsPerMinute, tokens, failures, ttftP50Ms, ttftP95Ms }, errorsByCode }`.
 * Every series has one entry per bucket, oldest first; `start` is each bucket's first millisecond.
 * `costToday` is `[{ currency, cost }]`, one per currency priced today (cost a decimal string);
 * empty when no request today had a price.
 */
export function createAdminOverviewRoute(dependencies: AdminOverviewDependencies): RouteHandler {
  return async function adminOverview(context, _request, response) {
    const query = parseWith(overviewQuerySchema, Object.fromEntries(context.query));
    const window = query.window ?? 'hour';
    const { bucketMs, buckets } = overviewWindows[window];
    const now = dependencies.now();
    // Aligned buckets: a chart refreshed every few seconds keeps its bars where they were.
    const to = (Math.floor(now / bucketMs) + 1) * bucketMs;
    const from = to - buckets * bucketMs;
    const today = Math.floor(now / dayMs) * dayMs;
    const [timeline, totals, counts] = await Promise.all([
      dependencies.usage.timeline({ from, to, bucketMs }),
      dependencies.usage.aggregate({ from: today, to: now + 1, groupBy: [] }),
      dependencies.hub.counts(),
    ]);
    // The day's total comes split by currency (docs/spend.md): counts are summed over every row,
    // cost is given per currency, unpriced rows (no currency) adding nothing.
    const sum = (pick: (row: (typeof totals)[number]) => number) => totals.reduce((total, row) => total + pick(row), 0);
    const costToday = totals.flatMap((row) => (row.currency !== undefined ? [{ currency: row.currency, cost: formatMicros(row.costMicros) }] : []));
    const series = (pick: (bucket: UsageTimelineBucket) => number | null) => timeline.buckets.map(pick);
    sendJson(response, 200, {
      window,
      bucketMs,
      now: {
        activeStreams: dependencies.generations.active.size,
        hubConnections: counts.total,
        requestsToday: sum((row) => row.requests),
        tokensToday: sum((row) => row.totalTokens),
        costToday,
      },
      series: {
        start: series((bucket) => bucket.start),
        requestsPerMinute: series((bucket) => (bucket.requests * minuteMs) / bucketMs),
        tokens: series((bucket) => bucket.totalTokens),
        failures: series((bucket) => bucket.failures),
        ttftP50Ms: series((bucket) => quantileFromBins(bucket.ttftBins, 0.5)),
        ttftP95Ms: series((bucket) => quantileFromBins(bucket.ttftBins, 0.95)),
      },
      errorsByCode: timeline.errorsByCode,
    });
  };
}
