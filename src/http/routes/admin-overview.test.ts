// The overview's time-to-first-token percentiles, estimated from the store's bin counts.
import { describe, expect, it } from 'vitest';
import { ttftBinBoundsMs } from '../../store/store.js';
import { quantileFromBins } from './admin-overview.js';

const bins = (entries: Record<number, number>) => Array.from({ length: ttftBinBoundsMs.length + 1 }, (_, index) => entries[index] ?? 0);

describe('quantileFromBins', () => {
  it('is null when nothing was counted', () => {
    expect(quantileFromBins(bins({}), 0.5)).toBeNull();
  });

  it('interpolates inside the bin the rank falls in', () => {
    // 10 in (100, 200]: the median is halfway through that bin, p95 near its top.
    expect(quantileFromBins(bins({ 3: 10 }), 0.5)).toBe(150);
    expect(quantileFromBins(bins({ 3: 10 }), 0.95)).toBe(195);
    // 0..25 ms holds the first half, 1–1.5 s the second: p50 at the top of the first, p95 in the second.
    expect(quantileFromBins(bins({ 0: 5, 8: 5 }), 0.5)).toBe(25);
    expect(quantileFromBins(bins({ 0: 5, 8: 5 }), 0.95)).toBe(1450);
  });

  it('answers the last bound for times above it', () => {
    expect(quantileFromBins(bins({ [ttftBinBoundsMs.length]: 3 }), 0.5)).toBe(60_000);
  });
});
