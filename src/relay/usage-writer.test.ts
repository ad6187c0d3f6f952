// Usage rows reach the store in batches (one insert per maxRows or per maxDelayMs), flush() stores
// what is queued, and a failing store loses nothing silently: the rows are logged whole.
import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../observability/logger.js';
import type { UsageRecord, UsageStore } from '../store/store.js';
import { createUsageWriter } from './usage-writer.js';

function row(index: number): UsageRecord {
  return { at: index, userId: 'u', provider: 'p', model: 'm', promptTokens: 1, completionTokens: 1, totalTokens: 2, estimated: false, durationMs: 1, outcome: 'completed' };
}

function fakeUsage(fail = false): UsageStore & { batches: UsageRecord[][] } {
  const batches: UsageRecord[][] = [];
  return {
    batches,
    record: () => Promise.reject(new Error('rows go in batches')),
    recordMany: async (rows) => {
      if (fail) throw new Error('database down');
      batches.push([...rows]);
    },
    aggregate: async () => [],
    recent: async () => [],
    search: async () => [],
    providerStats: async () => [],
    timeline: async () => ({ buckets: [], errorsByCode: {} }),
    tokensSince: async () => 0,
    costSince: async () => 0,
  };
}

describe('usage writer', () => {
  it('writes one batch per maxRows, the rest after maxDelayMs', async () => {
    vi.useFakeTimers();
    try {
      const usage = fakeUsage();
      const writer = createUsageWriter({ usage, logger: createLogger('silent'), maxRows: 3, maxDelayMs: 100 });
      for (let index = 0; index < 7; index++) writer.write(row(index));
      await vi.advanceTimersByTimeAsync(0);
      expect(usage.batches.map((batch) => batch.length)).toEqual([3, 3]);
      await vi.advanceTimersByTimeAsync(99);
      expect(usage.batches).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(1);
      expect(usage.batches.map((batch) => batch.map((entry) => entry.at))).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('flush() stores what is queued at once and waits for it', async () => {
    const usage = fakeUsage();
    const writer = createUsageWriter({ usage, logger: createLogger('silent'), maxDelayMs: 60_000 });
    writer.write(row(1));
    writer.write(row(2));
    await writer.flush();
    expect(usage.batches).toEqual([[row(1), row(2)]]);
  });

  it('logs the rows of a failed batch whole, so none is lost silently', async () => {
    const lines: string[] = [];
    const logger = createLogger('error', new Writable({ write: (chunk: Buffer, _encoding, callback) => (lines.push(chunk.toString()), callback()) }));
    const writer = createUsageWriter({ usage: fakeUsage(true), logger });
    writer.write(row(41));
    await writer.flush();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ msg: '1 usage rows not stored', rows: [{ at: 41, userId: 'u' }] });
  });
});
