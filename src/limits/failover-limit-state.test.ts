// A Redis outage must not stop a node: admissions fall back to memory, are settled where they
// were admitted, and the shared state takes over again when it answers.
import { describe, expect, it } from 'vitest';
import { SluiceError } from '../errors/sluice-error.js';
import { createLogger } from '../observability/logger.js';
import { createFailoverLimitState } from './failover-limit-state.js';
import type { LimitCheck, LimitState } from './limit-state.js';
import { createMemoryLimitState } from './memory-limit-state.js';

/** A memory state that can be switched to fail like an unreachable Redis. */
function flakyState(): LimitState & { down: boolean; calls: string[] } {
  const inner = createMemoryLimitState();
  const state = {
    down: false,
    calls: [] as string[],
    async admit(...args: Parameters<LimitState['admit']>) {
      state.calls.push('admit');
      if (state.down) throw new SluiceError('store_unavailable', { message: 'Redis is unreachable.' });
      return inner.admit(...args);
    },
    async seed(...args: Parameters<LimitState['seed']>) {
      if (state.down) throw new SluiceError('store_unavailable');
      return inner.seed(...args);
    },
    async settle(...args: Parameters<LimitState['settle']>) {
      state.calls.push('settle');
      if (state.down) throw new SluiceError('store_unavailable');
      return inner.settle(...args);
    },
  };
  return state;
}

const slot: LimitCheck = { kind: 'concurrency', key: 'key:k1:streams', limit: 1, label: 'key.concurrentStreams' };

describe('failover limit state', () => {
  it('admits from memory while the primary is down, settles there, and goes back to the primary when it answers', async () => {
    const primary = flakyState();
    const fallback = createMemoryLimitState();
    const state = createFailoverLimitState({ primary, fallback, logger: createLogger('silent') });
    expect((await state.admit([slot], 1000, 'a')).outcome).toBe('admitted');
    primary.down = true;
    // The primary holds lease a; the fallback knows nothing of it, so b is admitted there.
    expect((await state.admit([slot], 1001, 'b')).outcome).toBe('admitted');
    expect((await state.admit([slot], 1002, 'c')).outcome).toBe('refused');
    await state.settle([slot], 0, 1003, 'b');
    expect((await state.admit([slot], 1004, 'd')).outcome).toBe('admitted');
    primary.down = false;
    // Back on the primary, where lease a still holds the one slot.
    expect((await state.admit([slot], 1005, 'e')).outcome).toBe('refused');
    await state.settle([slot], 0, 1006, 'a');
    expect((await state.admit([slot], 1007, 'f')).outcome).toBe('admitted');
  });

  it('passes other errors through', async () => {
    const broken: LimitState = {
      admit: () => Promise.reject(new TypeError('bug')),
      seed: () => Promise.resolve(),
      settle: () => Promise.resolve(),
    };
    const state = createFailoverLimitState({ primary: broken, fallback: createMemoryLimitState(), logger: createLogger('silent') });
    await expect(state.admit([slot], 1, 'x')).rejects.toThrow(TypeError);
  });
});
