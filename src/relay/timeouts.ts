// Enforces the first-byte, idle and total timeouts of one upstream attempt at the event level, so
// the same rules (and error codes) hold for HTTP and WebSocket providers alike.
import { SluiceError } from '../errors/sluice-error.js';
import type { Timeouts } from '../config/config.js';
import type { StreamEvent } from './stream-event.js';

/**
 * Wraps an adapter's event stream. When a timeout fires, `abort` is called with the matching
 * SluiceError (which cancels the upstream I/O) and that error is what the wrapper throws.
 * `start` is not an answer event: the first-byte timer runs until the first content event.
 */
export async function* withTimeouts(
  source: AsyncIterable<readonly StreamEvent[]>,
  timeouts: Timeouts,
  abort: (reason: SluiceError) => void,
  provider: string,
): AsyncGenerator<readonly StreamEvent[]> {
  let fired: SluiceError | undefined;
  const fire = (code: 'upstream_first_byte_timeout' | 'upstream_idle_timeout' | 'upstream_total_timeout', ms: number) => {
    if (fired) return;
    const what = { upstream_first_byte_timeout: 'first-byte', upstream_idle_timeout: 'idle', upstream_total_timeout: 'total' }[code];
    fired = new SluiceError(code, { provider, message: `Provider "${provider}" hit the ${what} timeout (${ms.toString()} ms).` });
    abort(fired);
  };
  let receivedContent = false;
  const firstByteTimer = setTimeout(() => fire('upstream_first_byte_timeout', timeouts.firstByteMs), timeouts.firstByteMs);
  // Created at the first content event and re-armed with refresh(), which allocates nothing.
  let idleTimer: NodeJS.Timeout | undefined;
  const totalTimer = timeouts.totalMs > 0 ? setTimeout(() => fire('upstream_total_timeout', timeouts.totalMs), timeouts.totalMs) : undefined;
  try {
    for await (const batch of source) {
      if (fired) throw fired;
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
    throw fired ?? error;
  } finally {
    clearTimeout(firstByteTimer);
    clearTimeout(idleTimer);
    clearTimeout(totalTimer);
  }
}

