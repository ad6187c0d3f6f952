// A LimitState that can hold one admission until the test lets it through, as a slow Redis round
// trip would: the request's body has been read, and its route has not yet followed its generation.
import { createMemoryLimitState } from '../../src/limits/memory-limit-state.js';
import type { LimitState } from '../../src/limits/limit-state.js';

export interface AdmissionHold {
  /** Resolves when the held admission has reached the limit state. */
  readonly reached: Promise<void>;
  /** Lets it through (to the memory state's own answer). */
  release(): void;
}

export interface HoldingLimitState {
  /** What to pass to startGateway as `extra.limitState`. */
  readonly state: LimitState;
  /** Holds the next admission that comes; the ones after it pass at once. */
  holdNext(): AdmissionHold;
}

export function createHoldingLimitState(): HoldingLimitState {
  const memory = createMemoryLimitState();
  let next: { arrive: () => void; released: Promise<void> } | undefined;
  return {
    state: {
      async admit(checks, now, leaseId) {
        const held = next;
        next = undefined;
        if (held) {
          held.arrive();
          await held.released;
        }
        return memory.admit(checks, now, leaseId);
      },
      seed: (quota, usedTokens, now) => memory.seed(quota, usedTokens, now),
      settle: (checks, tokens, now, leaseId) => memory.settle(checks, tokens, now, leaseId),
    },
    holdNext() {
      let arrive!: () => void;
      let release!: () => void;
      const reached = new Promise<void>((resolve) => (arrive = resolve));
      const released = new Promise<void>((resolve) => (release = resolve));
      next = { arrive, released };
      return { reached, release };
    },
  };
}
