// Date ranges for usage reports, shared by GET /admin/usage and `sluice usage`: UTC dates, both
// ends inclusive, turned into the store's [from, to) milliseconds.
import { SluiceError } from '../errors/sluice-error.js';

const dayMs = 86_400_000;
const defaultDays = 30;

export interface UsageRange {
  /** YYYY-MM-DD, inclusive. */
  from: string;
  /** YYYY-MM-DD, inclusive. */
  to: string;
  query: { from: number; to: number };
}

/** Defaults: `to` is today (UTC), `from` is 29 days before `to`. Throws when from is after to. */
export function usageRange(from: string | undefined, to: string | undefined, now: number): UsageRange {
  const toStart = to !== undefined ? Date.parse(`${to}T00:00:00Z`) : Math.floor(now / dayMs) * dayMs;
  const fromStart = from !== undefined ? Date.parse(`${from}T00:00:00Z`) : toStart - (defaultDays - 1) * dayMs;
  if (Number.isNaN(toStart) || Number.isNaN(fromStart)) throw new SluiceError('invalid_request', { param: Number.isNaN(fromStart) ? 'from' : 'to', message: 'from and to must be dates such as 2026-12-01.' });
  if (fromStart > toStart) throw new SluiceError('invalid_request', { param: 'from', message: `from (${isoDay(fromStart)}) is after to (${isoDay(toStart)}).` });
  return { from: isoDay(fromStart), to: isoDay(toStart), query: { from: fromStart, to: toStart + dayMs } };
}

function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
