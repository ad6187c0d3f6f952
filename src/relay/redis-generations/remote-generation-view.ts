// A generation running on another node, read through the same GenerationView a local one offers:
// its log is copied from Redis into an EventLog (pub/sub says when it grew; a periodic re-read
// catches lost messages), cancel asks the producing node over its control channel, and following
// holds a lease there that keeps the generation alive as a local subscriber would. The periodic
// re-read also checks the producing node's presence, so a follower never hangs: when that node
// died it gets every event that reached Redis, then `generation_interrupted`.
import { SluiceError } from '../../errors/sluice-error.js';
import type { Logger } from '../../observability/logger.js';
import type { RedisConnections } from '../../redis/connection.js';
import { errorPayload, type StreamEvent } from '../../contract/stream-event.js';
import { EventLog } from '../event-log.js';
import type { GenerationListener, GenerationView } from '../generation.js';
import type { GenerationKeys } from './keys.js';
import { decodeEntry, type LogFormat } from './log-format.js';
import type { FollowingView, RemoteFollowers } from './remote-followers.js';
import { parseEvent, publishControl, type ControlMessage } from './wire.js';

/** What a view shares with the registry that made it. */
export interface RemoteViewContext {
  readonly redis: RedisConnections;
  readonly keys: GenerationKeys;
  /** This node's id (the reader's, not the producer's). */
  readonly nodeId: string;
  readonly now: () => number;
  readonly logger: Logger;
  /** How long reads may fail before the view ends with store_unavailable: as long as a crash takes to show. */
  readonly presenceTtlMs: number;
  /** How often a following view re-reads the log and renews its lease, in ms. */
  readonly followCheckMs: number;
  readonly followers: RemoteFollowers;
}

/** Redis did not answer: generations of other nodes can be neither found nor cancelled. */
export function storeUnavailable(cause?: unknown): SluiceError {
  return new SluiceError('store_unavailable', { message: 'Redis is unreachable: generations running on other nodes cannot be found or cancelled until it is back.', cause });
}

/** One read of the log beyond the cursor, and whether the producing node is alive. */
interface LogRead {
  readonly entries: unknown;
  readonly producerAlive: boolean;
}

export class RemoteGenerationView implements GenerationView, FollowingView {
  readonly id: string;
  readonly #node: string;
  /** The layout of the log in Redis, from its meta hash (log-format.ts). */
  readonly #format: LogFormat;
  /** Format 2: the list entries read so far (in format 1 that is the number of events). */
  #entriesRead = 0;
  /** Names this view's lease on the producing node: `<this node>#<serial>`. */
  readonly #viewer: string;
  readonly #context: RemoteViewContext;
  readonly #log = new EventLog();
  readonly #listeners = new Set<GenerationListener>();
  #reading: Promise<void> | undefined;
  #readAgain = false;
  #timer: NodeJS.Timeout | undefined;
  /** When reads started failing (Redis unreachable), if they are failing. */
  #failingSince: number | undefined;

  /** The view of generation `id`, produced by node `node`, its log in `format`; `open()` reads it first. */
  constructor(id: string, node: string, format: LogFormat, viewer: string, context: RemoteViewContext) {
    this.id = id;
    this.#node = node;
    this.#format = format;
    this.#viewer = viewer;
    this.#context = context;
  }

  get events(): readonly StreamEvent[] {
    return this.#log.events;
  }

  get committed(): boolean {
    return this.#log.committed;
  }

  get finished(): boolean {
    return this.#log.finished;
  }

  bytesFrom(seq: number): number {
    return this.#log.bytesFrom(seq);
  }

  /**
   * Adds a listener called when the log grew (once per read from Redis). The first one starts
   * following (subscription, periodic check, a lease that keeps the producer's generation
   * alive as a local subscriber would); when the last leaves, following stops. Leaving never
   * cancels the generation: its producing node decides that, as for its own clients.
   */
  subscribe(listener: GenerationListener): () => void {
    this.#listeners.add(listener);
    if (this.#listeners.size === 1 && !this.finished) this.#follow();
    return () => {
      if (!this.#listeners.delete(listener) || this.#listeners.size > 0) return;
      this.#unfollow();
    };
  }

  /** Asks the producing node to cancel; fire and forget (the `error` event shows the outcome). */
  cancel(reason: SluiceError = new SluiceError('cancelled')): void {
    if (this.finished) return;
    this.#publish({ type: 'cancel', id: this.id, code: reason.code, message: reason.message }).catch((error: unknown) => {
      this.#context.logger.warn({ err: error, generationId: this.id }, 'redis generation registry: could not send a cancel to the producing node');
    });
  }

  /** The first read, for find(): rejects with store_unavailable when Redis does not answer. */
  async open(): Promise<void> {
    await this.#readOnce(true);
  }

  /** Reads what Redis holds beyond the cursor and checks the producer is alive; never rejects. */
  async read(): Promise<void> {
    if (this.#reading) {
      this.#readAgain = true;
      return this.#reading;
    }
    this.#reading = (async () => {
      do {
        this.#readAgain = false;
        await this.#readOnce(false);
      } while (this.#readAgain && !this.finished);
    })().finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  onGrew(length: number): void {
    if (Number.isFinite(length) && length <= this.#log.length) return;
    this.refreshSoon();
  }

  refreshSoon(): void {
    void this.read();
  }

  /** Stops following without telling anyone (registry shutdown). */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #readOnce(strict: boolean): Promise<void> {
    if (this.finished) return;
    const before = this.#log.length;
    // A second pass only when a format-2 list turned out to be rewritten (#absorbBatches).
    for (let pass = 0; pass < 2; pass++) {
      let read: LogRead;
      try {
        read = await this.#fetch(this.#format === 2 ? this.#entriesRead : this.#log.length);
        this.#failingSince = undefined;
      } catch (error) {
        if (strict) throw storeUnavailable(error);
        this.#readFailed(error, before);
        return;
      }
      if (this.#absorb(read)) break;
    }
    this.#settleRead(before);
  }

  /**
   * The producer's presence, then the log's entries from index `from` on (in format 1, the seq).
   * Presence first: a producer seen gone before the read wrote everything it ever will by then, so
   * "gone" never hides a terminal event. Two commands, not a transaction: the presence key and the log are in
   * different slots on a Redis Cluster (docs/decisions/0019-redis-cluster.md).
   */
  async #fetch(from: number): Promise<LogRead> {
    const { redis, keys, nodeId } = this.#context;
    const present = await redis.command.exists(keys.presence(this.#node));
    const entries = await redis.command.lrange(keys.events(this.id), from, -1);
    // Our own node cannot be the producer of a generation it does not hold: it restarted.
    return { entries, producerAlive: present === 1 && this.#node !== nodeId };
  }

  /** Not a hang either: a follower that cannot reach Redis for as long as a crash takes to show ends. */
  #readFailed(error: unknown, before: number): void {
    const { now, presenceTtlMs } = this.#context;
    const since = (this.#failingSince ??= now());
    if (now() - since >= presenceTtlMs) {
      this.#log.append({ type: 'error', error: errorPayload(storeUnavailable(error)) });
      this.#settleRead(before);
    }
  }

  /**
   * Appends what was read; ends the log when the producer died before its terminal event, or an
   * entry is unreadable. False when the read must be made again from the first entry.
   */
  #absorb(read: LogRead): boolean {
    try {
      const entries = Array.isArray(read.entries) ? read.entries : [];
      if (this.#format === 2 && !this.#absorbBatches(entries)) return false;
      if (this.#format === 1) for (const entry of entries) if (!this.finished) this.#log.append(parseEvent(entry));
      if (!this.finished && !read.producerAlive) {
        this.#log.append({
          type: 'error',
          error: {
            code: 'generation_interrupted',
            message: `Gateway node ${this.#node} stopped before the answer finished; every event it produced up to then was delivered. Retry the request.`,
            retryable: true,
          },
        });
      }
    } catch (error) {
      this.#context.logger.error({ err: error, generationId: this.id }, 'redis generation registry: unreadable generation log');
      this.#log.append({ type: 'error', error: errorPayload(error instanceof SluiceError ? error : new SluiceError('internal_error')) });
    }
    return true;
  }

  /**
   * Format 2: each entry is a batch that says the seq of its first event. Events this view already
   * holds are skipped. An entry that starts beyond what it holds means the list is not the one the
   * cursor counted (the producer wrote it again after the keys expired): false, and the cursor goes
   * back to the first entry, so the read is made again and the skipping keeps every event once.
   */
  #absorbBatches(entries: readonly unknown[]): boolean {
    for (const entry of entries) {
      if (this.finished) return true;
      const { firstSeq, events } = decodeEntry(entry);
      if (firstSeq > this.#log.length) {
        this.#entriesRead = 0;
        return false;
      }
      this.#entriesRead++;
      for (let index = this.#log.length - firstSeq; index < events.length && !this.finished; index++) {
        const event = events[index];
        if (event) this.#log.append(event);
      }
    }
    return true;
  }

  /** After a read: stop following once finished, and tell the listeners if the log grew. */
  #settleRead(before: number): void {
    if (this.finished) this.#unfollow();
    if (this.#log.length > before) for (const listener of [...this.#listeners]) listener();
  }

  #follow(): void {
    this.#context.followers.add(this);
    this.#timer = setInterval(() => {
      this.refreshSoon();
      this.#renewLease();
    }, this.#context.followCheckMs);
    this.#timer.unref();
    this.#renewLease();
  }

  #renewLease(): void {
    this.#publish({ type: 'attach', id: this.id, viewer: this.#viewer }).catch(() => undefined);
  }

  #unfollow(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#publish({ type: 'detach', id: this.id, viewer: this.#viewer }).catch(() => undefined);
    this.#context.followers.remove(this);
  }

  #publish(message: ControlMessage): Promise<number> {
    return publishControl(this.#context.redis, this.#context.keys, this.#node, message);
  }
}
