// Enforces the first-byte, idle and total timeouts of one upstream attempt at the event level, so
// the same rules (and error codes) hold for HTTP and WebSocket providers alike.
import { SluiceError } from '../errors/sluice-error.js';
import type { Timeouts } from '../contract/provider.js';
import type { StreamEvent } from '../contract/stream-event.js';

type TimeoutCode = 'upstream_first_byte_timeout' | 'upstream_idle_timeout' | 'upstream_total_timeout';
type Batch = readonly StreamEvent[];

const timeoutNames: Record<TimeoutCode, string> = {
  upstream_first_byte_timeout: 'first-byte',
  upstream_idle_timeout: 'idle',
  upstream_total_timeout: 'total',
};

/**
 * Wraps an adapter's event stream. When a timeout fires, `abort` is called with the matching
 * SluiceError (which cancels the upstream I/O) and that error is what the wrapper throws, at once:
 * a pending read is settled by the timeout, so an adapter that ignores its abort signal cannot
 * hold the generation past its timeouts. `start` is not an answer event: the first-byte timeout
 * runs until the first content event. A pending read is settled by `cancelled` too, so a
 * cancelled generation ends at once even when its adapter is stuck.
 */
export function withTimeouts(source: AsyncIterable<Batch>, timeouts: Timeouts, abort: (reason: SluiceError) => void, provider: string, cancelled?: AbortSignal): AsyncIterableIterator<Batch> {
  return new TimedBatches(source[Symbol.asyncIterator](), timeouts, abort, provider, cancelled);
}

interface PendingRead {
  resolve(result: IteratorResult<Batch>): void;
  reject(error: unknown): void;
}

/**
 * A hand-written iterator rather than an async generator racing each read against a timeout
 * promise (decision 0023): per read it makes one promise for the consumer and one for the
 * adapter, where the generator made five or more, and `Promise.race` left a reaction on the
 * long-lived timeout promise for every read until the stream ended. All three timeouts share one
 * timer, armed for the earliest deadline: content only records its time (the first content re-arms
 * it once), and when the timer fires before the idle timeout is due it is re-armed for what is left. So a streaming answer costs no timer
 * work per batch.
 */
class TimedBatches implements AsyncIterableIterator<Batch> {
  readonly #source: AsyncIterator<Batch>;
  readonly #timeouts: Timeouts;
  readonly #abort: (reason: SluiceError) => void;
  readonly #provider: string;
  readonly #cancelled: AbortSignal | undefined;
  readonly #startedAt = performance.now();
  /** When the last content event arrived; undefined until the first. */
  #lastContentAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #pending: PendingRead | undefined;
  /** The timeout or cancellation that ended the stream; thrown by every later read. */
  #failure: Error | undefined;
  #closed = false;

  constructor(source: AsyncIterator<Batch>, timeouts: Timeouts, abort: (reason: SluiceError) => void, provider: string, cancelled: AbortSignal | undefined) {
    this.#source = source;
    this.#timeouts = timeouts;
    this.#abort = abort;
    this.#provider = provider;
    this.#cancelled = cancelled;
    cancelled?.addEventListener('abort', this.#onCancel, { once: true });
    this.#arm(this.#nextDeadline());
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Batch>> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#source.next().then(this.#onResult, this.#onError);
    });
  }

  /** The consumer stopped early: let the adapter run its cleanup, without waiting on an adapter that may never answer. */
  return(): Promise<IteratorResult<Batch>> {
    if (!this.#closed) {
      this.#close();
      this.#releaseSource();
    }
    return Promise.resolve({ done: true, value: undefined });
  }

  readonly #onResult = (result: IteratorResult<Batch>): void => {
    const pending = this.#take();
    if (!pending) return;
    if (result.done) {
      this.#close();
      pending.resolve(result);
      return;
    }
    if (this.#timeouts.idleMs > 0 || this.#lastContentAt === undefined) {
      for (const event of result.value) {
        if (event.type === 'start') continue;
        const first = this.#lastContentAt === undefined;
        this.#lastContentAt = performance.now();
        // The first content ends the first-byte timeout; the idle one may be due sooner.
        if (first) {
          clearTimeout(this.#timer);
          this.#arm(this.#nextDeadline());
        }
        break;
      }
    }
    pending.resolve(result);
  };

  readonly #onError = (error: unknown): void => {
    const pending = this.#take();
    if (!pending) return;
    this.#close();
    pending.reject(error);
  };

  /** The read waiting for the adapter, unless a timeout or cancellation settled it already. */
  #take(): PendingRead | undefined {
    const pending = this.#pending;
    this.#pending = undefined;
    return this.#failure === undefined ? pending : undefined;
  }

  readonly #onCancel = (): void => {
    // The generation cancels with a SluiceError (Generation.cancel).
    this.#fail(this.#cancelled?.reason as Error);
  };

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    const { firstByteMs, idleMs, totalMs } = this.#timeouts;
    if (this.#lastContentAt === undefined && now - this.#startedAt >= firstByteMs) this.#fire('upstream_first_byte_timeout', firstByteMs);
    else if (this.#lastContentAt !== undefined && idleMs > 0 && now - this.#lastContentAt >= idleMs) this.#fire('upstream_idle_timeout', idleMs);
    else if (totalMs > 0 && now - this.#startedAt >= totalMs) this.#fire('upstream_total_timeout', totalMs);
    else this.#arm(this.#nextDeadline());
  };

  /** The earliest moment (performance.now() time) a timeout can fire, or undefined when none can. */
  #nextDeadline(): number | undefined {
    const { firstByteMs, idleMs, totalMs } = this.#timeouts;
    let deadline = totalMs > 0 ? this.#startedAt + totalMs : Infinity;
    if (this.#lastContentAt === undefined) deadline = Math.min(deadline, this.#startedAt + firstByteMs);
    else if (idleMs > 0) deadline = Math.min(deadline, this.#lastContentAt + idleMs);
    return deadline === Infinity ? undefined : deadline;
  }

  #arm(deadline: number | undefined): void {
    if (deadline === undefined || this.#closed) return;
    this.#timer = setTimeout(this.#onTimer, Math.max(1, Math.ceil(deadline - performance.now())));
  }

  #fire(code: TimeoutCode, ms: number): void {
    const error = new SluiceError(code, { provider: this.#provider, message: `Provider "${this.#provider}" hit the ${timeoutNames[code]} timeout (${ms.toString()} ms).` });
    this.#abort(error);
    this.#fail(error);
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#failure = error;
    const pending = this.#pending;
    this.#pending = undefined;
    this.#close();
    this.#releaseSource();
    pending?.reject(error);
  }

  #close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#cancelled?.removeEventListener('abort', this.#onCancel);
  }

  #releaseSource(): void {
    void Promise.resolve(this.#source.return?.()).catch(() => {});
  }
}
