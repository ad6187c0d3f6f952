// The cancellation of one step of a generation (choosing an attempt, then running it): what
// cancel() and the timeouts abort. Node's AbortController makes its AbortSignal when `signal` is
// first read, and that, with an 'abort' listener, cost about 10 µs on every request before the
// upstream call (decision 0046). So a step is its own Cancellation, with plain listeners, and makes
// an AbortSignal only for code that asks for one: an adapter that waits with it, a pool's line.
import type { Cancellation } from '../contract/provider.js';

export class Step implements Cancellation {
  #aborted = false;
  #reason: unknown;
  #controller: AbortController | undefined;
  #listeners: ((reason: unknown) => void)[] | undefined;

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  /** An AbortSignal that aborts with this step, made on first read (already aborted if the step is). */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  onAbort(listener: (reason: unknown) => void): () => void {
    if (this.#aborted) {
      // As an AbortSignal's listener added too late: never called. The caller checks `aborted` first.
      return noop;
    }
    (this.#listeners ??= []).push(listener);
    return () => {
      const listeners = this.#listeners;
      const index = listeners?.indexOf(listener) ?? -1;
      if (index >= 0) listeners?.splice(index, 1);
    };
  }

  /** Aborts once: the signal, if made, then each listener in the order added. Later calls do nothing. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners !== undefined) for (const listener of listeners) listener(reason);
  }
}

const noop = (): void => undefined;
