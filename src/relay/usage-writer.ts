// Writes usage rows in batches: one insert per `maxRows` rows or per `maxDelayMs`, whichever comes
// first. A row per generation written alone cost a database commit per request; batched, a busy
// gateway pays one commit for many, and a slow database never delays an answer.
import type { Logger } from '../observability/logger.js';
import type { UsageRecord, UsageStore } from '../store/store.js';

export interface UsageWriter {
  /** Queues one row; it is stored within `maxDelayMs`. */
  write(row: UsageRecord): void;
  /** Stores everything queued so far; settles when it is written (or its failure logged). */
  flush(): Promise<void>;
}

export interface UsageWriterOptions {
  usage: UsageStore;
  logger: Logger;
  /** Default 200. */
  maxRows?: number;
  /** Default 100 ms. */
  maxDelayMs?: number;
}

export function createUsageWriter(options: UsageWriterOptions): UsageWriter {
  const maxRows = options.maxRows ?? 200;
  const maxDelayMs = options.maxDelayMs ?? 100;
  let queued: UsageRecord[] = [];
  let timer: NodeJS.Timeout | undefined;
  const writing = new Set<Promise<void>>();

  function writeQueued(): Promise<void> {
    clearTimeout(timer);
    timer = undefined;
    if (queued.length === 0) return Promise.resolve();
    const rows = queued;
    queued = [];
    const done = options.usage.recordMany(rows).catch((error: unknown) => {
      // Lost rows are logged whole, so an operator can replay them from the log.
      options.logger.error({ err: error, rows }, `${rows.length.toString()} usage rows not stored`);
    });
    writing.add(done);
    void done.finally(() => writing.delete(done));
    return done;
  }

  return {
    write(row) {
      queued.push(row);
      if (queued.length >= maxRows) void writeQueued();
      else if (timer === undefined) {
        timer = setTimeout(() => void writeQueued(), maxDelayMs);
        timer.unref();
      }
    },
    async flush() {
      await writeQueued();
      await Promise.all(writing);
    },
  };
}
