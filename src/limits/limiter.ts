// Request and token limits per key and per user: the contract the routes use. The arithmetic is
// in token-bucket.ts; where the counters live (memory now, Redis in cluster mode) is a LimitState.
import type { Limits } from '../contract/principal.js';

export interface LimitSubject {
  readonly userId: string;
  readonly userLimits: Limits;
  readonly keyId?: string;
  readonly keyLimits: Limits;
}

/** What one admitted request holds until its generation ends. */
export interface Admission {
  /**
   * Charges the generation's actual tokens (prompt + completion) to the token-rate buckets and
   * the daily and monthly quotas, and frees the concurrent-stream slot. Safe to call more than
   * once: only the first call counts.
   */
  settle(totalTokens: number): Promise<void>;
}

export interface Limiter {
  /**
   * Checks every limit of the key and of the user at once and, only if all pass, takes one
   * request from the request buckets and one concurrent-stream slot. Refuses with a SluiceError
   * `rate_limited` (requests or tokens per minute, concurrent streams) or `quota_exceeded` (daily
   * or monthly tokens), whose message names the limit (`key.requestsPerMinute`,
   * `user.dailyTokens`) and whose retryAfterSeconds says when it may pass.
   */
  admit(subject: LimitSubject): Promise<Admission>;
}
