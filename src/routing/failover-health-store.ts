// Target health that survives a Redis outage. In cluster mode health lives in Redis; while Redis is
// unreachable, this node routes by its own memory instead, so reading health never fails a request
// (health is advice for choosing a target, not a limit that must hold). Failures and successes are
// written to memory as well, always: when Redis goes away, the node still remembers the cooldowns
// it saw itself rather than sending everything at a deployment it knew was down. A request's
// in-flight count is released where it was acquired.
import { SluiceError } from '../errors/sluice-error.js';
import type { Logger } from '../observability/logger.js';
import type { HealthStore } from './health.js';

export interface FailoverHealthStoreOptions {
  /** The shared store (Redis). */
  readonly primary: HealthStore;
  /** This node's store (memory), used while the primary is unavailable. */
  readonly fallback: HealthStore;
  /**
   * False while the primary is known to be unreachable (the Redis connection is down): the
   * primary is then not even tried. When it says true but the primary fails anyway (a command
   * timeout), the call falls back too.
   */
  readonly isHealthy: () => boolean;
  readonly logger: Logger;
}

function isUnavailable(error: unknown): boolean {
  return error instanceof SluiceError && error.code === 'store_unavailable';
}

export function createFailoverHealthStore(options: FailoverHealthStoreOptions): HealthStore {
  const { primary, fallback, isHealthy, logger } = options;
  let failingOver = false;

  function note(failing: boolean): void {
    if (failing === failingOver) return;
    failingOver = failing;
    // Once per change of state, not per request.
    if (failing) logger.warn('routing: the shared upstream health is unavailable; this node routes by what it saw itself until it is back');
    else logger.info('routing: the shared upstream health is back');
  }

  /** The primary's answer, or the fallback's when the primary is down. */
  async function either<T>(onPrimary: () => Promise<T>, onFallback: () => Promise<T>): Promise<T> {
    if (!isHealthy()) {
      note(true);
      return onFallback();
    }
    try {
      const result = await onPrimary();
      note(false);
      return result;
    } catch (error) {
      if (!isUnavailable(error)) throw error;
      note(true);
      return onFallback();
    }
  }

  return {
    read: (ids, now) => either(() => primary.read(ids, now), () => fallback.read(ids, now)),
    claimProbe: (id, now) => either(() => primary.claimProbe(id, now), () => fallback.claimProbe(id, now)),
    async recordSuccess(id, now) {
      await fallback.recordSuccess(id, now);
      await either(() => primary.recordSuccess(id, now), async () => undefined);
    },
    async recordFailure(id, failure, now) {
      const local = await fallback.recordFailure(id, failure, now);
      return either(() => primary.recordFailure(id, failure, now), async () => local);
    },
    acquire: (id, now) => either(() => primary.acquire(id, now), () => fallback.acquire(id, now)),
    readAndAcquire: (ids, acquireId, now) => either(() => primary.readAndAcquire(ids, acquireId, now), () => fallback.readAndAcquire(ids, acquireId, now)),
    // In the same turn only from the primary's recent read; otherwise `readAndAcquire` decides
    // (and fails over), so this store's view of the primary's state changes in one place.
    readAndAcquireNow: (ids, acquireId, now) => (isHealthy() ? primary.readAndAcquireNow?.(ids, acquireId, now) : undefined),
    async reset(id) {
      await fallback.reset(id);
      // An admin's reset must reach every node: when Redis is down, say so rather than pretend.
      await primary.reset(id);
    },
  };
}
