// Keeping Sluice within each provider's own rate limits (`providers.<id>.limits`): a request is
// admitted against the provider's budget BEFORE it is sent, so the pool router moves to another
// deployment, or waits for the budget to refill, instead of collecting 429s from upstream. The
// budgets are the limits machinery's token buckets (decision 0007), held in the same LimitState
// as the callers' limits: memory on one node, Redis (with a memory failover) in a cluster, where
// every node draws from the one budget.
//
// Requests per minute N is a bucket of N refilled N per minute: N at once, then one every 60/N s.
// Tokens per minute is a bucket a request may enter while it is out of debt; the request's
// estimated prompt tokens are charged on admission (so requests admitted at the same moment see
// each other) and the rest of its actual usage when it ends, possibly into debt that later
// requests wait out. Those are two LimitState steps, not one: requests admitted between them may
// overrun the budget by a prompt each, which the debt then pays back.
import { randomUUID } from 'node:crypto';
import { flat } from '../contract/flat-string.js';
import { SluiceError } from '../errors/sluice-error.js';
import type { LimitCheck, LimitLabel, LimitState, RateCheck } from '../limits/limit-state.js';

/** A provider's budget, as configured (`providers.<id>.limits`); an absent field is no limit. */
export interface ProviderRateLimits {
  readonly requestsPerMinute?: number | undefined;
  readonly tokensPerMinute?: number | undefined;
}

export interface ProviderQuotasOptions {
  /** Where the buckets live: the app's LimitState, shared across nodes in a cluster. */
  readonly state: LimitState;
  /** The budget of a provider id, or undefined when it has none. Asked on every admission. */
  readonly limitsOf: (providerId: string) => ProviderRateLimits | undefined;
  /** The clock, in ms since the epoch. `waitForAdmission` reads it; `tryAdmit` takes `now`. */
  readonly now: () => number;
  /** Names each admission in the LimitState; default `crypto.randomUUID`. */
  readonly leaseId?: () => string;
}

/** A request the provider's budget admitted. */
export interface ProviderAdmission {
  readonly admitted: true;
  /**
   * Charges what the request actually used (prompt plus completion tokens, as the provider
   * counts them), less the estimate already charged on admission. Call it once, when the
   * generation ends, however it ended (a request that failed before any token: 0). Rejects
   * only when the LimitState fails (a bare Redis state without failover).
   */
  settle(actualTokens: number): Promise<void>;
}

export type ProviderAdmissionResult =
  | ProviderAdmission
  /** Nothing was taken. `retryAfterMs`: when the budget would admit it, if nobody else takes it first. */
  | { readonly admitted: false; readonly retryAfterMs: number; readonly limit: LimitLabel };

export interface WaitForAdmissionOptions {
  /** How long the request may wait in line, in ms (proposed setting: `router.queueTimeoutMs`, 10 000). */
  readonly timeoutMs: number;
  /** The request's signal: aborting it takes the request out of the line. */
  readonly signal?: AbortSignal;
}

export interface ProviderQuotas {
  /**
   * Admits one request to `providerId` now, or says how long until it could be. A provider with
   * no budget is always admitted, without touching the state.
   * @param estimatedPromptTokens the prompt's estimated tokens (contract/usage-estimate.ts),
   *   charged at once to the tokens-per-minute budget; anything but a finite number ≥ 0 counts as 0.
   * @throws what the LimitState throws (store_unavailable from a bare Redis state).
   */
  tryAdmit(providerId: string, estimatedPromptTokens: number, now: number): Promise<ProviderAdmissionResult>;
  /**
   * The admission of a provider with no budget, at once: nothing to count, nothing to settle.
   * Undefined for a provider with a budget, whose admission needs the state (`tryAdmit`).
   */
  admitsWithoutBudget(providerId: string): ProviderAdmission | undefined;
  /**
   * Waits in this node's line for `providerId` until its budget admits the request, first come
   * first served. Rejects with `provider_limit_reached` (429, with Retry-After) when `timeoutMs`
   * passes first, or at once when the budget cannot refill within the time the request has left;
   * with the signal's reason when the signal aborts. Other nodes have their own lines and draw
   * from the same budget.
   */
  waitForAdmission(providerId: string, estimatedPromptTokens: number, options: WaitForAdmissionOptions): Promise<ProviderAdmission>;
}

const minuteMs = 60_000;

interface Waiter {
  readonly estimatedPromptTokens: number;
  /** When this waiter gives up, on the `now` clock. */
  readonly deadline: number;
  resolve(admission: ProviderAdmission): void;
  /** Rejects and takes the waiter out of the line (its timer and abort listener too). */
  fail(error: unknown): void;
}

/** One provider's line on this node, and the loop that serves it while anyone is in it. */
interface Line {
  readonly waiters: Waiter[];
  /** Wakes the serving loop early (when the line changed while it slept). */
  wake?: () => void;
  /** The last refusal's wait, for the Retry-After of a timeout. */
  lastRetryAfterMs: number;
  /** While the loop sleeps: when the budget may admit the head (on the `now` clock). */
  sleepingUntil?: number;
  /** The limit that refused the head last. */
  lastLimit?: LimitLabel;
}

function checksOf(providerId: string, limits: ProviderRateLimits | undefined): RateCheck[] {
  const prefix = `provider:${encodeURIComponent(providerId)}`;
  const checks: RateCheck[] = [];
  if (limits?.requestsPerMinute !== undefined) {
    checks.push({ kind: 'requests', key: `${prefix}:rpm`, limit: limits.requestsPerMinute, label: 'provider.requestsPerMinute', periodMs: minuteMs });
  }
  if (limits?.tokensPerMinute !== undefined) {
    checks.push({ kind: 'tokens', key: `${prefix}:tpm`, limit: limits.tokensPerMinute, label: 'provider.tokensPerMinute', periodMs: minuteMs });
  }
  return checks;
}

function tokenCount(value: number): number {
  return Number.isFinite(value) ? Math.max(0, value) : 0;
}

const nothingToSettle: ProviderAdmission = Object.freeze({ admitted: true, settle: () => Promise.resolve() });

export function createProviderQuotas(options: ProviderQuotasOptions): ProviderQuotas {
  const { state, limitsOf, now } = options;
  // Kept until the attempt settles: flat (contract/flat-string.ts).
  const newLeaseId = options.leaseId ?? (() => flat(randomUUID()));
  const lines = new Map<string, Line>();

  async function tryAdmit(providerId: string, estimatedPromptTokens: number, at: number): Promise<ProviderAdmissionResult> {
    const checks = checksOf(providerId, limitsOf(providerId));
    if (checks.length === 0) return nothingToSettle;
    const leaseId = newLeaseId();
    const result = await state.admit(checks, at, leaseId);
    if (result.outcome === 'refused') return { admitted: false, retryAfterMs: result.retryAfterMs, limit: result.failed.label };
    // Provider budgets hold no quota checks, so `needs-seed` cannot happen; treat it as admitted
    // rather than invent a refusal.
    const tokenChecks: LimitCheck[] = checks.filter((check) => check.kind === 'tokens');
    if (tokenChecks.length === 0) return nothingToSettle;
    const reserved = tokenCount(estimatedPromptTokens);
    if (reserved > 0) await state.settle(tokenChecks, reserved, at, leaseId);
    let settled = false;
    return {
      admitted: true,
      async settle(actualTokens) {
        if (settled) return;
        settled = true;
        // An estimate above the actual use stays charged: a bucket cannot be refunded, and a
        // prompt estimate is below the prompt plus its answer all but always.
        const rest = tokenCount(actualTokens) - reserved;
        if (rest > 0) await state.settle(tokenChecks, rest, now(), leaseId);
      },
    };
  }

  function refusal(providerId: string, retryAfterMs: number, message: string): SluiceError {
    return new SluiceError('provider_limit_reached', { message, provider: providerId, retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) });
  }

  function tooLate(providerId: string, line: Line, passesAt: number): SluiceError {
    const retryAfterMs = Math.max(0, passesAt - now());
    return refusal(providerId, retryAfterMs, `Provider ${providerId} is at its ${line.lastLimit ?? 'configured'} limit (providers.${providerId}.limits) for ${String(retryAfterMs)} ms more, longer than this request may wait.`);
  }

  /** Serves `providerId`'s line until it is empty: one admission at a time, head first. */
  async function serve(providerId: string, line: Line): Promise<void> {
    while (line.waiters.length > 0) {
      const head = line.waiters[0];
      if (head === undefined) break;
      let result: ProviderAdmissionResult;
      try {
        result = await tryAdmit(providerId, head.estimatedPromptTokens, now());
      } catch (error) {
        // The state failed: this waiter hears why; the next one tries again.
        if (line.waiters[0] === head) head.fail(error);
        continue;
      }
      if (result.admitted) {
        // Whoever is first now gets it: if the head left while it was being admitted, the
        // admission is not wasted on nobody.
        const first = line.waiters[0];
        if (first !== undefined) {
          line.waiters.shift();
          first.resolve(result);
        }
        continue;
      }
      line.lastRetryAfterMs = result.retryAfterMs;
      line.lastLimit = result.limit;
      // Nobody whose time runs out before the budget refills can be served: tell them now, so
      // the router can try another deployment instead of waiting for nothing.
      const passesAt = now() + result.retryAfterMs;
      for (const waiter of [...line.waiters]) {
        if (waiter.deadline < passesAt) waiter.fail(tooLate(providerId, line, passesAt));
      }
      if (line.waiters.length === 0) break;
      line.sleepingUntil = passesAt;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, result.retryAfterMs));
        line.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      delete line.wake;
      delete line.sleepingUntil;
    }
    lines.delete(providerId);
  }

  function waitForAdmission(providerId: string, estimatedPromptTokens: number, waitOptions: WaitForAdmissionOptions): Promise<ProviderAdmission> {
    const { timeoutMs, signal } = waitOptions;
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    let line = lines.get(providerId);
    const starting = line === undefined;
    if (line === undefined) {
      line = { waiters: [], lastRetryAfterMs: 0 };
      lines.set(providerId, line);
    }
    const joined = line;
    const deadline = now() + timeoutMs;
    // The line is asleep until the budget refills for the one at its head; a request that cannot
    // wait that long learns so at once.
    if (joined.sleepingUntil !== undefined && deadline < joined.sleepingUntil) return Promise.reject(tooLate(providerId, joined, joined.sleepingUntil));
    return new Promise<ProviderAdmission>((resolve, reject) => {
      const leave = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const index = joined.waiters.indexOf(waiter);
        if (index >= 0) joined.waiters.splice(index, 1);
        // An empty line needs no loop sleeping on it.
        if (joined.waiters.length === 0) joined.wake?.();
      };
      const waiter: Waiter = {
        estimatedPromptTokens,
        deadline,
        resolve(admission) {
          leave();
          resolve(admission);
        },
        fail(error) {
          leave();
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      };
      const onAbort = (): void => waiter.fail(signal?.reason);
      const timer = setTimeout(() => {
        waiter.fail(refusal(providerId, joined.lastRetryAfterMs, `Provider ${providerId} stayed at its limit (providers.${providerId}.limits) for the ${String(timeoutMs)} ms this request could wait (router.queueTimeoutMs).`));
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      joined.waiters.push(waiter);
      if (starting) void serve(providerId, joined);
    });
  }

  function admitsWithoutBudget(providerId: string): ProviderAdmission | undefined {
    const limits = limitsOf(providerId);
    return limits?.requestsPerMinute === undefined && limits?.tokensPerMinute === undefined ? nothingToSettle : undefined;
  }

  return { tryAdmit, admitsWithoutBudget, waitForAdmission };
}
