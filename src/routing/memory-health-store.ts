// Target health in this process's memory: the HealthStore of a single node. A cluster uses the
// Redis store instead, so that a cooldown one node saw holds for every node.
import { cooldownMs, healthyTarget, type CooldownPolicy, type Failure, type HealthStore, type TargetHealth } from './health.js';

interface Entry {
  consecutiveFailures: number;
  coolingUntil?: number;
  disabled: boolean;
  lastErrorCode?: TargetHealth['lastErrorCode'];
  lastFailureAt?: number;
  /** While a half-open probe is out: when another caller may claim one. */
  probeUntil?: number;
  inFlight: number;
}

export function createMemoryHealthStore(policy: CooldownPolicy): HealthStore {
  const entries = new Map<string, Entry>();
  const entry = (id: string): Entry => {
    let found = entries.get(id);
    if (!found) {
      found = { consecutiveFailures: 0, disabled: false, inFlight: 0 };
      entries.set(id, found);
    }
    return found;
  };

  function view(found: Entry | undefined, now: number): TargetHealth {
    if (!found) return healthyTarget;
    const base = {
      consecutiveFailures: found.consecutiveFailures,
      inFlight: found.inFlight,
      ...(found.lastErrorCode !== undefined ? { lastErrorCode: found.lastErrorCode } : {}),
      ...(found.lastFailureAt !== undefined ? { lastFailureAt: found.lastFailureAt } : {}),
    };
    if (found.disabled) return { ...base, state: 'disabled' };
    if (found.coolingUntil !== undefined && found.coolingUntil > now) return { ...base, state: 'cooling', coolingUntil: found.coolingUntil };
    if (found.consecutiveFailures > 0) return { ...base, state: 'half-open' };
    return { ...base, state: 'healthy' };
  }

  const read = (ids: readonly string[], now: number): Map<string, TargetHealth> => new Map(ids.map((id) => [id, view(entries.get(id), now)]));

  function acquire(id: string): () => void {
    const found = entry(id);
    found.inFlight += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      found.inFlight -= 1;
    };
  }

  return {
    read(ids, now) {
      return Promise.resolve(read(ids, now));
    },
    claimProbe(id, now) {
      const found = entries.get(id);
      const state = view(found, now).state;
      if (state === 'healthy') return Promise.resolve(true);
      if (!found || state !== 'half-open' || (found.probeUntil !== undefined && found.probeUntil > now)) return Promise.resolve(false);
      found.probeUntil = now + policy.probeTimeoutMs;
      return Promise.resolve(true);
    },
    recordSuccess(id) {
      const found = entries.get(id);
      if (found && !found.disabled) {
        found.consecutiveFailures = 0;
        delete found.coolingUntil;
        delete found.probeUntil;
      }
      return Promise.resolve();
    },
    recordFailure(id, failure: Failure, now) {
      const found = entry(id);
      found.consecutiveFailures += 1;
      found.lastErrorCode = failure.code;
      found.lastFailureAt = now;
      delete found.probeUntil;
      if (failure.disable === true) found.disabled = true;
      else found.coolingUntil = now + cooldownMs(found.consecutiveFailures, policy, failure.retryAfterMs);
      return Promise.resolve(view(found, now));
    },
    acquire(id) {
      return Promise.resolve(acquire(id));
    },
    readAndAcquire(ids, acquireId, now) {
      const health = read(ids, now);
      return Promise.resolve({ health, release: acquire(acquireId) });
    },
    readAndAcquireNow(ids, acquireId, now) {
      return { health: read(ids, now), release: acquire(acquireId) };
    },
    reset(id) {
      const found = entries.get(id);
      if (found) {
        const inFlight = found.inFlight;
        entries.set(id, { consecutiveFailures: 0, disabled: false, inFlight });
      }
      return Promise.resolve();
    },
  };
}
