// Enforces the first-byte, idle and total timeouts of one upstream attempt at the event level, so
// the same rules (and error codes) hold for HTTP and WebSocket providers alike.
import { SluiceError } from '../errors/sluice-error.js';
import type { EventBatch, EventSink, Timeouts } from '../contract/provider.js';

type TimeoutCode = 'upstream_first_byte_timeout' | 'upstream_idle_timeout' | 'upstream_total_timeout';

const timeoutNames: Record<TimeoutCode, string> = {
  upstream_first_byte_timeout: 'first-byte',
  upstream_idle_timeout: 'idle',
  upstream_total_timeout: 'total',
};

/**
 * The sink one attempt's upstream pushes to, in front of the generation's. When a timeout fires,
 * `step` is aborted with the matching SluiceError (which cancels the upstream I/O) and the target
 * fails with that error at once, so an adapter that ignores its abort signal cannot hold the
 * generation past its timeouts. `start` is not an answer event: the first-byte timeout runs until
 * the first content event. Once closed (the attempt ended, failed, timed out, or the generation
 * finished), whatever the upstream still pushes is dropped.
 *
 * All three timeouts share one timer, armed for the earliest deadline: content only records its
 * time (the first content re-arms it once), and when the timer fires before the idle timeout is due
 * it is re-armed for what is left. So a streaming answer costs no timer work per batch
 * (decision 0023), and no promise either: batches are pushed (decision 0034).
 */
export class TimedSink implements EventSink {
  readonly #target: EventSink;
  readonly #timeouts: Timeouts;
  readonly #step: { abort(reason: unknown): void };
  readonly #provider: string;
  readonly #startedAt = performance.now();
  /** When the last content event arrived; undefined until the first. */
  #lastContentAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Called once on close: how a pulled upstream is told to stop (upstream-events.ts). */
  #onClose: (() => void) | undefined;

  constructor(target: EventSink, timeouts: Timeouts, step: { abort(reason: unknown): void }, provider: string) {
    this.#target = target;
    this.#timeouts = timeouts;
    this.#step = step;
    this.#provider = provider;
    this.#arm(this.#nextDeadline());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Runs `release` when the sink closes (at once if it is closed already). */
  onClose(release: () => void): void {
    if (this.#closed) release();
    else this.#onClose = release;
  }

  events(batch: EventBatch): void {
    if (this.#closed) return;
    if (this.#timeouts.idleMs > 0 || this.#lastContentAt === undefined) {
      for (const event of batch) {
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
    this.#target.events(batch);
  }

  end(): void {
    if (this.#closed) return;
    this.close();
    this.#target.end();
  }

  fail(error: unknown): void {
    if (this.#closed) return;
    this.close();
    this.#target.fail(error);
  }

  /** Stops the timer and drops whatever comes later; the target hears nothing of it. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const release = this.#onClose;
    this.#onClose = undefined;
    release?.();
  }

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
    this.close();
    this.#step.abort(error);
    this.#target.fail(error);
  }
}
