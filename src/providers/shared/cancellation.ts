// An adapter's view of its call's cancellation: the context's Cancellation when the caller gave one
// (the generation does: no AbortSignal is made for it), else one read off the context's signal.
import type { CallContext, Cancellation } from '../../contract/provider.js';

export function cancellationOf(context: Pick<CallContext, 'signal' | 'cancellation'>): Cancellation {
  return context.cancellation ?? signalCancellation(context.signal);
}

/** An AbortSignal as a Cancellation. */
export function signalCancellation(signal: AbortSignal): Cancellation {
  return {
    get aborted() {
      return signal.aborted;
    },
    get reason(): unknown {
      const reason: unknown = signal.reason;
      return reason;
    },
    onAbort(listener) {
      const onAbort = () => listener(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      return () => signal.removeEventListener('abort', onAbort);
    },
  };
}
