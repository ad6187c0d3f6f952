// The producer side of cluster mode: every generation started on this node is copied to Redis
// (its info, then its log, one round trip per batch of events), and the keys of running
// generations are kept alive between batches. Nothing here may slow down or break the stream
// served from this node: a write that fails is retried with backoff, and after
// `maxMirrorFailures` in a row the copy gives up (other nodes then see the generation as
// interrupted) while the local stream goes on.
import type { Logger } from '../../observability/logger.js';
import type { RedisConnections } from '../../redis/connection.js';
import type { Generation } from '../generation.js';
import type { GenerationInfo } from '../generation-registry.js';
import { appendBatch } from './append-script.js';
import type { GenerationKeys } from './keys.js';
import type { LogFormat } from './log-format.js';

export interface MirrorWriterOptions {
  readonly redis: RedisConnections;
  readonly keys: GenerationKeys;
  readonly nodeId: string;
  /** TTL of a finished generation's keys, in ms. */
  readonly retentionMs: number;
  /** TTL of a running generation's keys, in ms (refreshed every `keyRefreshMs`). */
  readonly runningTtlMs: number;
  /** Extra time to gather events before a write (not the first or the last), in ms; 0 writes once per turn of the event loop. */
  readonly flushIntervalMs: number;
  readonly keyRefreshMs: number;
  /** The format a log whose copy starts now is written in (LogFormatGate); the log keeps it for its whole life. */
  readonly logFormat: () => LogFormat;
  readonly logger: Logger;
}

/** Consecutive failed writes after which a generation's mirror gives up (its local stream goes on). */
const maxMirrorFailures = 10;

/** How long close() waits for the writes in flight, in ms. */
const closeWaitMs = 2000;

interface Mirror {
  readonly generation: Generation;
  readonly info: GenerationInfo;
  /** Events known to be in Redis: the next batch starts here. */
  written: number;
  infoWritten: boolean;
  /**
   * The format of the log in Redis, chosen when the copy starts and kept for its whole life: a
   * retried write, or a rewrite after the keys expired, must not mix two formats in one list.
   */
  readonly format: LogFormat;
  finishedWritten: boolean;
  writing: Promise<void> | undefined;
  flushTimer: NodeJS.Timeout | undefined;
  retryTimer: NodeJS.Timeout | undefined;
  failures: number;
  gaveUp: boolean;
  stopObserving: () => void;
}

function pending(mirror: Mirror): boolean {
  return !mirror.infoWritten || mirror.written < mirror.generation.events.length || (mirror.generation.finished && !mirror.finishedWritten);
}

export class MirrorWriter {
  readonly #options: MirrorWriterOptions;
  readonly #mirrors = new Map<string, Mirror>();
  readonly #keyTimer: NodeJS.Timeout;
  #closed = false;

  /** Starts the timer that keeps running generations' keys alive (it does not keep the process alive). */
  constructor(options: MirrorWriterOptions) {
    this.#options = options;
    this.#keyTimer = setInterval(() => void this.#refreshKeys(), options.keyRefreshMs);
    this.#keyTimer.unref();
  }

  /** Starts copying `generation`; the copy ends by itself once Redis holds the terminal event (or it gave up). */
  add(generation: Generation, info: GenerationInfo): void {
    const mirror: Mirror = {
      generation,
      info,
      written: 0,
      infoWritten: false,
      format: this.#options.logFormat(),
      finishedWritten: false,
      writing: undefined,
      flushTimer: undefined,
      retryTimer: undefined,
      failures: 0,
      gaveUp: false,
      stopObserving: () => undefined,
    };
    this.#mirrors.set(info.id, mirror);
    // Observed, not subscribed: the mirror must neither keep an abandoned generation alive nor cancel it.
    mirror.stopObserving = generation.observe(() => this.#requestFlush(mirror));
    this.#requestFlush(mirror);
  }

  /** Writes what is pending now (Redis is back after an outage). */
  flushAll(): void {
    for (const mirror of this.#mirrors.values()) this.#requestFlush(mirror);
  }

  /**
   * Stops the key refresh, waits (up to 2 s) for the writes in flight, so the last events (a
   * cancelled generation's error, say) reach Redis, then writes nothing more.
   */
  async close(): Promise<void> {
    clearInterval(this.#keyTimer);
    const writes = [...this.#mirrors.values()].map((mirror) => mirror.writing).filter((write) => write !== undefined);
    await Promise.race([Promise.allSettled(writes), new Promise((resolve) => setTimeout(resolve, closeWaitMs).unref())]);
    this.#closed = true;
    for (const mirror of this.#mirrors.values()) this.#retire(mirror);
  }

  #requestFlush(mirror: Mirror): void {
    if (this.#closed || mirror.gaveUp || mirror.writing || mirror.retryTimer) return;
    const { flushIntervalMs } = this.#options;
    const { generation } = mirror;
    // The first write (the info) goes with the log's first events, and the last one at once. In
    // between, and before the first event, events gather for flushIntervalMs (decision 0039). So
    // an answer that ends within the turn its first events came in is one write, not two. Other
    // nodes learn of a generation at its first event, or flushIntervalMs after its start: its id
    // reaches a client with its first event (the SSE head waits for the answer, WebSocket frames
    // are events), so no client can ask another node for it sooner; an operator reads it from
    // this node's own GET /admin/generations.
    const gather = !generation.finished && (mirror.infoWritten || generation.events.length === 0);
    if (flushIntervalMs > 0 && gather) {
      mirror.flushTimer ??= setTimeout(() => {
        mirror.flushTimer = undefined;
        this.#startFlush(mirror);
      }, flushIntervalMs);
      return;
    }
    clearTimeout(mirror.flushTimer);
    mirror.flushTimer = undefined;
    this.#startFlush(mirror);
  }

  #startFlush(mirror: Mirror): void {
    if (mirror.writing) return;
    mirror.writing = this.#flush(mirror).finally(() => {
      mirror.writing = undefined;
    });
  }

  /** Writes until Redis holds the whole log; one batch in flight at a time, so batches stay in order. */
  async #flush(mirror: Mirror): Promise<void> {
    try {
      while (!this.#closed && pending(mirror)) await this.#writeBatch(mirror);
      mirror.failures = 0;
      if (mirror.finishedWritten) this.#retire(mirror);
    } catch (error) {
      this.#writeFailed(mirror, error);
    }
  }

  /** Writes the events Redis does not hold yet as one batch, and moves the mirror's cursor by what Redis answered. */
  async #writeBatch(mirror: Mirror): Promise<void> {
    const { generation, info } = mirror;
    const { redis, keys, nodeId, retentionMs, runningTtlMs } = this.#options;
    // Read before the await: `finished` is only true once the terminal event is in `events`.
    const finished = generation.finished;
    const end = generation.events.length;
    const result = await appendBatch(redis, keys, {
      info,
      nodeId,
      expectedLength: mirror.written,
      events: generation.events.slice(mirror.written, end),
      finished,
      ttlMs: finished ? retentionMs : runningTtlMs,
      writeInfo: !mirror.infoWritten,
      format: mirror.format,
    });
    if (result.outcome === 'keys-missing') {
      // The keys expired (Redis lost them, or this node was cut off for longer than their
      // TTL): write everything again, info first.
      mirror.infoWritten = false;
      mirror.written = 0;
      return;
    }
    mirror.infoWritten = true;
    if (result.outcome === 'appended') {
      mirror.written = end;
      if (finished) mirror.finishedWritten = true;
    } else if (result.length > mirror.written && result.length <= end) {
      // An earlier write landed although its reply was lost: go on from what Redis holds.
      mirror.written = result.length;
    } else {
      throw new Error(`the Redis log of generation ${info.id} holds ${result.length.toString()} events, expected ${mirror.written.toString()}`);
    }
  }

  /** Retries with exponential backoff (250 ms doubling up to 5 s), or gives up after maxMirrorFailures. */
  #writeFailed(mirror: Mirror, error: unknown): void {
    const { logger } = this.#options;
    mirror.failures++;
    if (mirror.failures === 1) logger.warn({ err: error, generationId: mirror.info.id }, 'redis generation mirror: write failed; the local stream is unaffected, retrying');
    if (mirror.failures >= maxMirrorFailures) {
      mirror.gaveUp = true;
      logger.error({ generationId: mirror.info.id, failures: mirror.failures }, 'redis generation mirror: gave up; other nodes will see this generation as interrupted');
      this.#retire(mirror);
      return;
    }
    if (this.#closed) return;
    mirror.retryTimer = setTimeout(() => {
      mirror.retryTimer = undefined;
      this.#requestFlush(mirror);
    }, Math.min(250 * 2 ** (mirror.failures - 1), 5000));
    mirror.retryTimer.unref();
  }

  #retire(mirror: Mirror): void {
    mirror.stopObserving();
    clearTimeout(mirror.flushTimer);
    clearTimeout(mirror.retryTimer);
    this.#mirrors.delete(mirror.info.id);
  }

  /** Keeps running generations' keys alive between batches (a slow upstream), in one pipeline. */
  async #refreshKeys(): Promise<void> {
    const { redis, keys, runningTtlMs, logger } = this.#options;
    const running = [...this.#mirrors.values()].filter((mirror) => mirror.infoWritten && !mirror.generation.finished);
    if (!redis.healthy || running.length === 0) return;
    const pipeline = redis.background.pipeline();
    for (const mirror of running) pipeline.pexpire(keys.meta(mirror.info.id), runningTtlMs).pexpire(keys.events(mirror.info.id), runningTtlMs);
    try {
      await pipeline.exec();
    } catch (error) {
      logger.debug({ err: error }, 'redis generation registry: refreshing TTLs failed');
    }
  }
}
