// Limits that survive a Redis outage. In cluster mode the counters live in Redis; when Redis is
// unreachable, admissions fall back to this node's memory, so the node keeps serving what needs no
// shared state (a plain OpenAI-compatible stream) with limits that then hold per node instead of
// for the whole cluster. An admission is settled where it was admitted.
import { SluiceError } from '../errors/sluice-error.js';
import type { Logger } from '../observability/logger.js';
import type { LimitState } from './limit-state.js';

export interface FailoverLimitStateOptions {
  /** The shared state (Redis). */
  primary: LimitState;
  /** Used while the primary is unavailable (memory). */
  fallback: LimitState;
  logger: Logger;
}

function isUnavailable(error: unknown): boolean {
  return error instanceof SluiceError && error.code === 'store_unavailable';
}

export function createFailoverLimitState(options: FailoverLimitStateOptions): LimitState {
  const { primary, fallback, logger } = options;
  /** Leases admitted by the fallback, so their settle goes there too. */
  const fallbackLeases = new Set<string>();
  let failingOver = false;

  function note(failing: boolean): void {
    if (failing === failingOver) return;
    failingOver = failing;
    // Once per change of state, not per request.
    if (failing) logger.warn('limits: the shared limit state is unavailable; limits hold per node until it is back');
    else logger.info('limits: the shared limit state is back');
  }

  return {
    async admit(checks, now, leaseId) {
      try {
        const result = await primary.admit(checks, now, leaseId);
        note(false);
        return result;
      } catch (error) {
        if (!isUnavailable(error)) throw error;
        note(true);
        const result = await fallback.admit(checks, now, leaseId);
        if (result.outcome === 'admitted') fallbackLeases.add(leaseId);
        return result;
      }
    },
    async seed(quota, usedTokens, now) {
      try {
        await primary.seed(quota, usedTokens, now);
      } catch (error) {
        if (!isUnavailable(error)) throw error;
        await fallback.seed(quota, usedTokens, now);
      }
    },
    async settle(checks, tokens, now, leaseId) {
      if (fallbackLeases.delete(leaseId)) {
        await fallback.settle(checks, tokens, now, leaseId);
        return;
      }
      try {
        await primary.settle(checks, tokens, now, leaseId);
      } catch (error) {
        if (!isUnavailable(error)) throw error;
        // The tokens are lost to the shared counters and the slot's lease frees it when it
        // expires; the usage row still records them.
        logger.warn({ tokens, leaseId }, 'limits: could not settle an admission in the shared limit state');
      }
    },
  };
}
