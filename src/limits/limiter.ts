// Request and token limits per key and per user: the contract the routes use. The arithmetic is
// in token-bucket.ts; where the counters live (memory now, Redis in cluster mode) is a LimitState.
import type { Limits } from '../contract/principal.js';
import type { Cost } from '../contract/cost.js';

export interface LimitSubject {
  readonly userId: string;
  readonly userLimits: Limits;
  readonly keyId?: string;
  readonly keyLimits: Limits;
  /**
   * The currency of the requested model's price: budgets (`dailyBudgetMicros`,
   * `monthlyBudgetMicros`) are checked and charged in it. Absent (an unpriced model): budgets do
   * not apply, since the request costs nothing.
   */
  readonly currency?: string;
}

/** What one admitted request holds until its generation ends. */
export interface Admission {
  /**
   * Charges the generation's actual tokens (prompt + completion) to the token-rate buckets and
   * the daily and monthly quotas, charges `cost` to the budgets when it is in the currency they
   * were checked in, and frees the concurrent-stream slot. Safe to call more than once: only the
   * first call counts.
   */
  settle(totalTokens: number, cost?: Cost): Promise<void>;
}

export interface Limiter {
  /**
   * Checks every limit of the key and of the user at once and, only if all pass, takes one
   * request from the request buckets and one concurrent-stream slot. Refuses with a SluiceError
   * `rate_limited` (requests or tokens per minute, concurrent streams), `quota_exceeded` (daily
   * or monthly tokens) or `budget_exceeded` (daily or monthly spend), whose message names the
   * limit (`key.requestsPerMinute`, `user.dailyTokens`, `key.monthlyBudget`) and whose
   * retryAfterSeconds says when it may pass.
   */
  admit(subject: LimitSubject): Promise<Admission>;
}
