// Where limit counters live: the interface between the limiter (which decides which limits apply
// to a request and how to word a refusal) and the storage of the counters (memory in one process,
// Redis in cluster mode). Each method is one indivisible step, so a Redis implementation can run
// each call as ONE Lua script (EVALSHA with the checks' keys as KEYS and the rest as ARGV) and
// several nodes sharing the counters can never admit more than the limits allow.
//
// Notes for the Redis implementation:
// - Time comes in as `now` (the caller's clock), not Redis TIME, so the arithmetic is the same as
//   the memory state and tests can drive it; nodes' clocks must then agree to within a second or
//   so, which NTP gives.
// - One script touches the key's and the user's counters together. With Redis Cluster these
//   are different slots (a service key serves many users, a user holds several keys), so either
//   run limits on a single Redis (primary + replicas) or put every limit key under one hash tag
//   (`<prefix>{limits}:…`), which is one slot and plenty for a gateway's request rate.
// - Bucket keys can expire once the bucket would be full again (PEXPIRE of
//   (capacity - tokens) / refillPerMs), quota keys at PEXPIREAT `periodEnd`; absence means "full"
//   and "not yet seeded" respectively, exactly as in memory.
// - Concurrency slots would leak if a node crashed between `admit` and `settle` and they were a
//   bare counter: its INCR would never be undone. So a slot is a lease: `admit` and `settle` take
//   a lease id, one per admission, and the Redis state holds each concurrency key as a sorted set
//   of lease ids scored by a deadline (ZADD at admit, ZREM at settle, ZREMRANGEBYSCORE of expired
//   leases before counting). The deadline is not renewed (see redis-limit-state.ts for why and
//   what that costs). The memory state keeps the lease ids too, without deadlines (a crash takes
//   the counters with it), so that settling frees exactly the slots that admission took, on both.
import type { BudgetName, LimitName } from '../contract/principal.js';

/**
 * The name of one limit as the caller sees it in a refusal: `key.requestsPerMinute`; or, for the
 * budget Sluice keeps towards an upstream provider (routing/provider-quotas.ts),
 * `provider.tokensPerMinute`.
 */
export type LimitLabel = `${'key' | 'user'}.${LimitName | BudgetName}` | `provider.${'requestsPerMinute' | 'tokensPerMinute'}`;

interface CheckBase {
  /**
   * The counter's key, unique per subject, kind and (for quotas) period:
   * `key:<id>:rpm`, `user:<id>:tpm`, `key:<id>:streams`, `user:<id>:day:2026-12-01`,
   * `key:<id>:month:2026-12`, `provider:<id>:rpm`. Ids are URI-encoded, so they never contain `:`.
   */
  readonly key: string;
  /** The limit's value (requests, tokens or streams), a number ≥ 0. */
  readonly limit: number;
  /** What the refusal message names. */
  readonly label: LimitLabel;
}

/**
 * A token bucket of `limit` per `periodMs`. `requests`: admit takes 1 token, settle does nothing.
 * `tokens`: admit passes while the balance is above 0 and takes nothing; settle charges the
 * generation's tokens, possibly into debt.
 */
export interface RateCheck extends CheckBase {
  readonly kind: 'requests' | 'tokens';
  readonly periodMs: number;
}

/** Streams at once: admit takes a slot while fewer than `limit` are held; settle gives it back. */
export interface ConcurrencyCheck extends CheckBase {
  readonly kind: 'concurrency';
}

/**
 * Tokens per calendar period (UTC day or month): admit passes while the used count is below
 * `limit` and takes nothing; settle adds the generation's tokens. A spending budget is the same
 * counter counting micro-units of money instead (`key:<id>:budget:USD:day:2026-12-01`): the
 * limiter settles it with the generation's cost rather than its tokens. The counter must be seeded from
 * the usage store the first time it is needed (see `LimitState.seed`).
 */
export interface QuotaCheck extends CheckBase {
  readonly kind: 'quota';
  /** Start of the period, ms since the epoch; what the seed counts from. */
  readonly periodStart: number;
  /** End of the period (exclusive), ms since the epoch; the counter may be dropped from then on. */
  readonly periodEnd: number;
}

export type LimitCheck = RateCheck | ConcurrencyCheck | QuotaCheck;

export type AdmitResult =
  /** Every check passed; request tokens and concurrency slots were taken. */
  | { readonly outcome: 'admitted' }
  /**
   * A check failed and nothing was taken. When several fail, `failed` is the one that lasts
   * longest, so a caller who waits `retryAfterMs` is not refused at once by another.
   * `retryAfterMs` is finite and ≥ 0: time until this check would pass if nothing else changed
   * (`requests`: one token back; `tokens`: balance above 0; `concurrency`:
   * `concurrencyRetryAfterMs`; `quota`: `periodEnd - now`). A check that can never pass (a limit
   * of 0) reports its `periodMs`, or `concurrencyRetryAfterMs`.
   */
  | { readonly outcome: 'refused'; readonly failed: LimitCheck; readonly retryAfterMs: number }
  /**
   * Some quota counters are not in the state: nothing was checked or taken. The caller seeds
   * each (`seed`) and calls `admit` again.
   */
  | { readonly outcome: 'needs-seed'; readonly quotas: readonly QuotaCheck[] };

/**
 * How long a caller refused for concurrent streams is told to wait, in ms. A slot frees when some
 * other stream ends, which nothing here can predict; 1 s is short enough not to idle a client
 * whose stream ended and long enough not to invite a tight retry loop.
 */
export const concurrencyRetryAfterMs = 1000;

export interface LimitState {
  /**
   * Checks every limit and, only if all pass, takes one token from each `requests` bucket and one
   * slot from each `concurrency` counter, held under `leaseId`; all or nothing, indivisibly. An
   * absent bucket is full; an absent concurrency counter is 0; an absent quota counter answers
   * `needs-seed` (before anything is checked, so an unseeded quota cannot be skipped).
   * @param now ms since the epoch.
   * @param leaseId names this admission's concurrency slots until `settle` gets the same id back;
   *   unique across every node sharing the state (the limiter uses a random UUID). Retrying after
   *   `needs-seed` with the same id is fine: nothing was taken.
   * @throws when the storage fails (Redis unreachable); nothing was taken then.
   */
  admit(checks: readonly LimitCheck[], now: number, leaseId: string): Promise<AdmitResult>;

  /**
   * Sets a quota counter to `usedTokens` only if it is absent (Redis: `SET key used PXAT
   * periodEnd NX`). If another caller seeded it first, or a `settle` created it, this does
   * nothing: the counter already holds everything charged since, and a second seed would count
   * the store's rows twice. Seeding the same counter from two concurrent admits is therefore
   * harmless; the first write wins.
   */
  seed(quota: QuotaCheck, usedTokens: number, now: number): Promise<void>;

  /**
   * The end of an admitted request, indivisibly: charges `tokens` to each `tokens` bucket (into
   * debt if need be) and each `quota` counter, and frees the slot `leaseId` holds in each
   * `concurrency` counter (none when it holds none: a second settle, or an id never admitted,
   * frees nothing, so a counter never drops below 0). `requests` checks are ignored. Pass the
   * checks admitted, with quota checks for the period `now` falls in (a generation that ran past
   * midnight counts on the new day).
   *
   * An absent quota counter is created from 0 (Redis: INCRBY, then PEXPIREAT `periodEnd`, since
   * INCRBY alone leaves a key that never expires). It is absent here only when its period began
   * during this generation, so every earlier use of the period went through this same state and
   * no seed is missing. The one imprecision: if a generation's usage row reaches the store before
   * a concurrent seed query reads it, and its settle lands after that seed, its tokens count
   * twice; a quota may be slightly early, never late.
   * @param tokens whole tokens ≥ 0; anything else counts as 0.
   * @param leaseId the id the admission was made with.
   */
  settle(checks: readonly LimitCheck[], tokens: number, now: number, leaseId: string): Promise<void>;
}
