// The health of upstream targets, as the pool router sees it: a deployment (`provider/model`) or
// one provider key (`provider#2`) is healthy, cooling down after failures, half-open (its cooldown
// is over and one trial request may go), or disabled (a key the provider refused with 401/403).
// Also the in-flight count per deployment, for least-busy balancing. One node keeps this in
// memory; a cluster keeps it in Redis so that every node honours the same cooldowns
// (docs/pools.md). The arithmetic (how long a cooldown lasts) is here, shared by both stores.
import type { ErrorCode } from '../errors/table.js';

export type TargetState = 'healthy' | 'cooling' | 'half-open' | 'disabled';

/** What the router knows of one target at one instant. */
export interface TargetHealth {
  readonly state: TargetState;
  /** While cooling: when the target may be probed again (ms since the epoch). */
  readonly coolingUntil?: number;
  /** Failures since the last success; the cooldown doubles with each. */
  readonly consecutiveFailures: number;
  /** The error code of the last failure, for the admin view. */
  readonly lastErrorCode?: ErrorCode;
  /** When the last failure happened (ms since the epoch). */
  readonly lastFailureAt?: number;
  /** Requests running on this target now (all nodes, in a cluster). */
  readonly inFlight: number;
}

export const healthyTarget: TargetHealth = Object.freeze({ state: 'healthy', consecutiveFailures: 0, inFlight: 0 });

/** How failures turn into cooldowns. */
export interface CooldownPolicy {
  /** The first cooldown, when the upstream gave no Retry-After (ms). */
  readonly initialMs: number;
  /** The longest cooldown, whatever the number of failures or the Retry-After (ms). */
  readonly maxMs: number;
  /** How long a claimed half-open probe keeps others out before another may try (ms). */
  readonly probeTimeoutMs: number;
}

export interface Failure {
  readonly code: ErrorCode;
  /** The upstream's Retry-After, in ms; wins over the exponential cooldown (capped at maxMs). */
  readonly retryAfterMs?: number;
  /** Take the target out until reset (a key the provider refused). */
  readonly disable?: boolean;
}

/**
 * The cooldown after the `failures`-th consecutive failure: Retry-After when given, else
 * initialMs × 2^(failures − 1); never more than maxMs.
 */
export function cooldownMs(failures: number, policy: CooldownPolicy, retryAfterMs?: number): number {
  const exponential = policy.initialMs * 2 ** Math.max(0, Math.min(failures - 1, 30));
  return Math.min(policy.maxMs, retryAfterMs !== undefined && retryAfterMs > 0 ? retryAfterMs : exponential);
}

/** What `readAndAcquire` answers. */
export interface ReadAndAcquired {
  readonly health: ReadonlyMap<string, TargetHealth>;
  /** Ends the in-flight count (idempotent). */
  readonly release: () => void;
}

/**
 * Where target health lives. Every method is one indivisible step (a Redis implementation runs
 * each as one script or one pipeline). Ids are opaque strings: deployment ids and key ids.
 */
export interface HealthStore {
  /** The health of each id at `now`; an id never seen is `healthyTarget`. */
  read(ids: readonly string[], now: number): Promise<ReadonlyMap<string, TargetHealth>>;
  /**
   * Claims the one trial request of a half-open target. True for exactly one caller until the
   * probe ends (success or failure) or `probeTimeoutMs` passes.
   */
  claimProbe(id: string, now: number): Promise<boolean>;
  /** A request on this target succeeded (reached its first token): healthy again. */
  recordSuccess(id: string, now: number): Promise<void>;
  /** A request on this target failed before its first token: cool it down (or disable it). */
  recordFailure(id: string, failure: Failure, now: number): Promise<TargetHealth>;
  /**
   * Counts one request in flight on `id`; the returned function ends it (idempotent). A shared
   * store may take the count a moment after this resolves, but before any later read from the
   * same node.
   */
  acquire(id: string, now: number): Promise<() => void>;
  /**
   * `read(ids, now)` and `acquire(acquireId, now)` as one step: for a pool of one, whose only
   * deployment is tried whatever its health says unless it is disabled, so a shared store is
   * asked once instead of twice before the upstream call. The health read is as `read` answers
   * it, without this acquire's count. A caller that does not send the request after all
   * releases the count at once. A shared store may answer from its last read of the same ids when
   * that was recent, all of them were healthy and it has recorded nothing since; it then takes
   * the count a moment after this resolves, as `acquire` may.
   */
  readAndAcquire(ids: readonly string[], acquireId: string, now: number): Promise<ReadAndAcquired>;
  /**
   * `readAndAcquire` answered in the same turn, when the store can answer from this process's
   * memory: always for a single node's store; for a shared one, when `readAndAcquire` would go on
   * its recent read (decision 0033). Undefined, having counted nothing, when it cannot; a store
   * that never can leaves it out. The pool router uses it to send a pool of one's first attempt
   * without a promise on the way (decision 0046).
   */
  readAndAcquireNow?(ids: readonly string[], acquireId: string, now: number): ReadAndAcquired | undefined;
  /** Forgets every failure of `id` (admin reset). */
  reset(id: string): Promise<void>;
}
