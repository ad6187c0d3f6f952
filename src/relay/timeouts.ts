// Enforces the first-byte, idle and total timeouts of one upstream attempt at the event level, so
// the same rules (and error codes) hold for HTTP and WebSocket providers alike.
import { SluiceError } from '../errors/sluice-error.js';
import type { Timeouts } from '../contract/provider.js';
import type { StreamEvent } from '../contract/stream-event.js';

type TimeoutCode = 'upstream_first_byte_timeout' | 'upstream_idle_timeout' | 'upstream_total_timeout';

const timeoutNames: Record<TimeoutCode, string> = {
  upstream_first_byte_timeout: 'first-byte',
  upstream_idle_timeout: 'idle',
  upstream_total_timeout: 'total',
};

/**
 * Wraps an adapter's event stream. When a timeout fires, `abort` is called with the matching
 * SluiceError (which cancels the upstream I/O) and that error is what the wrapper throws, at once:
 * each read is raced against the timeout, so an adapter that ignores its abort signal cannot hold
 * the generation past its timeouts. `start` is not an answer event: the first-byte timer runs
 * until the first content event. Reads are raced against `cancelled` too, so a cancelled
 * generation ends at once even when its adapter is stuck.
 */
export async function* withTimeouts(
  source: AsyncIterable<readonly StreamEvent[]>,
  timeouts: Timeouts,
  abort: (reason: SluiceError) => void,
  provider: string,
  cancelled?: AbortSignal,
): AsyncGenerator<readonly StreamEvent[]> {
  let fired: SluiceError | undefined;
  let rejectTimedOut!: (error: SluiceError) => void;
  const timedOut = new Promise<never>((_resolve, reject) => (rejectTimedOut = reject));
  // Raced on every read; a rejection nobody races any more must not surface as unhandled.
  timedOut.catch(() => {});
  const fire = (code: TimeoutCode, ms: number) => {
    if (fired) return;
    fired = new SluiceError(code, { provider, message: `Provider "${provider}" hit the ${timeoutNames[code]} timeout (${ms.toString()} ms).` });
    abort(fired);
    rejectTimedOut(fired);
  };
  const onCancel = () => rejectTimedOut(cancelled?.reason as SluiceError);
  cancelled?.addEventListener('abort', onCancel, { once: true });
  let receivedContent = false;
  const firstByteTimer = setTimeout(() => fire('upstream_first_byte_timeout', timeouts.firstByteMs), timeouts.firstByteMs);
  // Created at the first content event and re-armed with refresh(), which allocates nothing.
  let idleTimer: NodeJS.Timeout | undefined;
  const totalTimer = timeouts.totalMs > 0 ? setTimeout(() => fire('upstream_total_timeout', timeouts.totalMs), timeouts.totalMs) : undefined;
  const iterator = source[Symbol.asyncIterator]();
  let exhausted = false;
  try {
    for (;;) {
      const result = await Promise.race([iterator.next(), timedOut]);
      if (result.done) {
        exhausted = true;
        break;
      }
      if (fired) throw fired;
      const batch = result.value;
      if (batch.some((event) => event.type !== 'start')) {
        if (!receivedContent) {
          receivedContent = true;
          clearTimeout(firstByteTimer);
          if (timeouts.idleMs > 0) idleTimer = setTimeout(() => fire('upstream_idle_timeout', timeouts.idleMs), timeouts.idleMs);
        } else {
          idleTimer?.refresh();
        }
      }
      yield batch;
    }
    if (fired) throw fired;
  } catch (error) {
    exhausted = true;
    throw fired ?? error;
  } finally {
    cancelled?.removeEventListener('abort', onCancel);
    clearTimeout(firstByteTimer);
    clearTimeout(idleTimer);
    clearTimeout(totalTimer);
    // Stopped early (the consumer returned, or a timeout fired while the adapter was stuck):
    // let the adapter run its cleanup, without waiting on an adapter that may never answer.
    if (!exhausted || fired) void Promise.resolve(iterator.return?.()).catch(() => {});
  }
}
