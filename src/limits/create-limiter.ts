// The Limiter the routes use: turns a key's and a user's Limits into counter checks, runs them
// through a LimitState in one step, seeds quota counters from the usage store the first time a
// period is seen (so a restart does not reset a day's or a month's quota), and words refusals.
import { randomUUID } from 'node:crypto';
import { flat } from '../contract/flat-string.js';
import type { BudgetName, LimitName, Limits } from '../contract/principal.js';
import { formatMicros, type Cost } from '../contract/cost.js';
import { SluiceError } from '../errors/sluice-error.js';
import type { Admission, LimitSubject, Limiter } from './limiter.js';
import type { LimitCheck, LimitLabel, LimitState, QuotaCheck } from './limit-state.js';

/** Whose usage a quota counter counts: the same argument `UsageStore.tokensSince` takes. */
export type QuotaSubject = { readonly keyId: string } | { readonly userId: string };

export interface LimiterOptions {
  readonly state: LimitState;
  /** The clock, in ms since the epoch. */
  readonly now: () => number;
  /**
   * Tokens already used by `subject` at or after `periodStart` (ms since the epoch); called once
   * per counter and period when the state does not hold it. Wire it to `UsageStore.tokensSince`.
   * If it throws, `admit` rejects with the same error (a quota is not waived because the
   * database is down).
   */
  readonly seedQuota: (subject: QuotaSubject, periodStart: number) => Promise<number>;
  /**
   * Micro-units of `currency` already spent by `subject` at or after `periodStart`; called once
   * per budget counter and period when the state does not hold it. Wire it to
   * `UsageStore.costSince`. Needed only when some limits have budgets: without it a request that
   * a budget applies to is refused with an Error. Failures reject `admit`, as for seedQuota.
   */
  readonly seedBudget?: (subject: QuotaSubject, currency: string, periodStart: number) => Promise<number>;
  /**
   * A new id for each admission, unique across every node sharing the state: the lease its
   * concurrency slots are held under until it settles. Default `crypto.randomUUID`.
   */
  readonly leaseId?: () => string;
}

const minuteMs = 60_000;

/** A period can roll over between building the checks and seeding them; a few rounds settle it. */
const maxSeedRounds = 3;

interface Period {
  readonly name: string;
  readonly start: number;
  readonly end: number;
}

function twoDigits(value: number): string {
  return String(value).padStart(2, '0');
}

/** The UTC calendar day containing `now`: `day:2026-12-01`. */
export function utcDay(now: number): Period {
  const date = new Date(now);
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth();
  const day = date.getUTCDate();
  return { name: `day:${year}-${twoDigits(month + 1)}-${twoDigits(day)}`, start: Date.UTC(year, month, day), end: Date.UTC(year, month, day + 1) };
}

/** The UTC calendar month containing `now`: `month:2026-12`. */
export function utcMonth(now: number): Period {
  const date = new Date(now);
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth();
  return { name: `month:${year}-${twoDigits(month + 1)}`, start: Date.UTC(year, month, 1), end: Date.UTC(year, month + 1, 1) };
}

/** One subject's side (the key, or the user) of a request. */
interface Side {
  readonly scope: 'key' | 'user';
  /** Counter key prefix: `key:<id>`, `user:<id>`. */
  readonly prefix: string;
  readonly quotaSubject: QuotaSubject;
  readonly limits: Limits;
}

function sidesOf(subject: LimitSubject): Side[] {
  const sides: Side[] = [];
  if (subject.keyId !== undefined) {
    sides.push({ scope: 'key', prefix: flat(`key:${encodeURIComponent(subject.keyId)}`), quotaSubject: { keyId: subject.keyId }, limits: subject.keyLimits });
  }
  sides.push({ scope: 'user', prefix: flat(`user:${encodeURIComponent(subject.userId)}`), quotaSubject: { userId: subject.userId }, limits: subject.userLimits });
  return sides;
}

function label(side: Side, name: LimitName): LimitLabel {
  return `${side.scope}.${name}`;
}

/** A quota check, with whose usage seeds it; `currency` marks a budget (counting micro-units). */
interface PeriodCheck {
  readonly check: QuotaCheck;
  readonly subject: QuotaSubject;
  readonly currency?: string;
}

/** Budget checks for the periods `now` falls in, in `currency`; none without a currency. */
function budgetChecks(sides: readonly Side[], now: number, currency: string | undefined): PeriodCheck[] {
  if (currency === undefined) return [];
  const result: PeriodCheck[] = [];
  for (const side of sides) {
    const budgets: [BudgetName, number | undefined, Period][] = [
      ['dailyBudget', side.limits.dailyBudgetMicros, utcDay(now)],
      ['monthlyBudget', side.limits.monthlyBudgetMicros, utcMonth(now)],
    ];
    for (const [name, limit, period] of budgets) {
      if (limit === undefined) continue;
      const check: QuotaCheck = { kind: 'quota', key: `${side.prefix}:budget:${encodeURIComponent(currency)}:${period.name}`, limit, label: `${side.scope}.${name}`, periodStart: period.start, periodEnd: period.end };
      result.push({ check, subject: side.quotaSubject, currency });
    }
  }
  return result;
}

/** Quota checks for the periods `now` falls in, with whose usage seeds each. */
function quotaChecks(sides: readonly Side[], now: number): PeriodCheck[] {
  const result: PeriodCheck[] = [];
  // The periods only when some side has a quota: most requests have none, and the dates cost a
  // Date and two formatted names each, twice per request (docs/decisions/0025-per-request-path.md).
  let day: Period | undefined;
  let month: Period | undefined;
  for (const side of sides) {
    const { dailyTokens, monthlyTokens } = side.limits;
    if (dailyTokens !== undefined) {
      day ??= utcDay(now);
      const check: QuotaCheck = { kind: 'quota', key: `${side.prefix}:${day.name}`, limit: dailyTokens, label: label(side, 'dailyTokens'), periodStart: day.start, periodEnd: day.end };
      result.push({ check, subject: side.quotaSubject });
    }
    if (monthlyTokens !== undefined) {
      month ??= utcMonth(now);
      const check: QuotaCheck = { kind: 'quota', key: `${side.prefix}:${month.name}`, limit: monthlyTokens, label: label(side, 'monthlyTokens'), periodStart: month.start, periodEnd: month.end };
      result.push({ check, subject: side.quotaSubject });
    }
  }
  return result;
}

/** The checks that do not depend on the date; the same at admit and at settle. */
function steadyChecks(sides: readonly Side[]): LimitCheck[] {
  const checks: LimitCheck[] = [];
  for (const side of sides) {
    const { requestsPerMinute, tokensPerMinute, concurrentStreams } = side.limits;
    if (requestsPerMinute !== undefined) checks.push({ kind: 'requests', key: `${side.prefix}:rpm`, limit: requestsPerMinute, label: label(side, 'requestsPerMinute'), periodMs: minuteMs });
    if (tokensPerMinute !== undefined) checks.push({ kind: 'tokens', key: `${side.prefix}:tpm`, limit: tokensPerMinute, label: label(side, 'tokensPerMinute'), periodMs: minuteMs });
    if (concurrentStreams !== undefined) checks.push({ kind: 'concurrency', key: `${side.prefix}:streams`, limit: concurrentStreams, label: label(side, 'concurrentStreams') });
  }
  return checks;
}

/** Whole seconds for `Retry-After`: rounded up, and at least 1 (0 would invite a tight loop). */
function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

function refusal(failed: LimitCheck, retryAfterMs: number, currency: string | undefined): SluiceError {
  const seconds = retryAfterSeconds(retryAfterMs);
  switch (failed.kind) {
    case 'requests':
    case 'tokens':
      return new SluiceError('rate_limited', {
        message: `Rate limit reached: ${failed.label} is ${failed.limit} per minute; retry in ${seconds} s.`,
        retryAfterSeconds: seconds,
      });
    case 'concurrency':
      return new SluiceError('rate_limited', {
        message: `Rate limit reached: ${failed.label} is ${failed.limit} at once; retry in ${seconds} s.`,
        retryAfterSeconds: seconds,
      });
    case 'quota': {
      const period = failed.label.endsWith('.dailyTokens') || failed.label.endsWith('.dailyBudget') ? 'UTC day' : 'UTC month';
      const resets = `it resets at ${new Date(failed.periodEnd).toISOString()}, in ${seconds} s.`;
      if (currency !== undefined) {
        return new SluiceError('budget_exceeded', {
          message: `Budget used up: ${failed.label} is ${formatMicros(failed.limit)} ${currency} per ${period}; ${resets}`,
          retryAfterSeconds: seconds,
        });
      }
      return new SluiceError('quota_exceeded', {
        message: `Token quota used up: ${failed.label} is ${failed.limit} tokens per ${period}; it resets at ${new Date(failed.periodEnd).toISOString()}, in ${seconds} s.`,
        retryAfterSeconds: seconds,
      });
    }
  }
}

/**
 * A Limiter over `state`. Both the key's limits (when the request came with a key) and the
 * user's apply; an absent field is no limit. Periods: requests and tokens per minute are token
 * buckets (token-bucket.ts); quotas are per UTC calendar day and month.
 *
 * Retry-After (whole seconds, at least 1, rounded up): requests per minute, until one request
 * is back in the bucket; tokens per minute, until the balance is out of debt; concurrent streams,
 * 1 s (when a slot frees cannot be known); daily or monthly quota, until the next UTC day or
 * month begins. When several limits refuse, the longest wait is reported.
 *
 * `admit` rejects with SluiceError `rate_limited` or `quota_exceeded`, or with whatever the state
 * or `seedQuota` threw (nothing is taken then).
 */
export function createLimiter(options: LimiterOptions): Limiter {
  const { state, now, seedQuota } = options;
  // Kept until the request settles: flat (contract/flat-string.ts).
  const newLeaseId = options.leaseId ?? (() => flat(randomUUID()));
  /** Seed queries in flight, by counter key: concurrent first requests of a period share one. */
  const seeding = new Map<string, Promise<void>>();

  function seed({ check, subject, currency }: PeriodCheck): Promise<void> {
    const running = seeding.get(check.key);
    if (running !== undefined) return running;
    const started = (async () => {
      try {
        let used: number;
        if (currency === undefined) used = await seedQuota(subject, check.periodStart);
        else if (options.seedBudget !== undefined) used = await options.seedBudget(subject, currency, check.periodStart);
        else throw new Error(`The limiter has no seedBudget, so it cannot check ${check.label}.`);
        await state.seed(check, Number.isFinite(used) ? used : 0, now());
      } finally {
        seeding.delete(check.key);
      }
    })();
    seeding.set(check.key, started);
    return started;
  }

  return {
    async admit(subject: LimitSubject): Promise<Admission> {
      const sides = sidesOf(subject);
      const steady = steadyChecks(sides);
      const leaseId = newLeaseId();
      for (let round = 1; ; round += 1) {
        const at = now();
        const quotas = [...quotaChecks(sides, at), ...budgetChecks(sides, at, subject.currency)];
        const result = await state.admit([...steady, ...quotas.map((quota) => quota.check)], at, leaseId);
        if (result.outcome === 'refused') {
          const failedKey = result.failed.key;
          throw refusal(result.failed, result.retryAfterMs, quotas.find((quota) => quota.check.key === failedKey)?.currency);
        }
        if (result.outcome === 'admitted') return admission(sides, steady, leaseId, subject.currency);
        if (round === maxSeedRounds) throw new Error(`The limit state still lacks quota counters after ${maxSeedRounds} seeds: ${result.quotas.map((quota) => quota.key).join(', ')}.`);
        const byKey = new Map(quotas.map((quota) => [quota.check.key, quota]));
        const toSeed = result.quotas.map((quota) => {
          const found = byKey.get(quota.key);
          // The state only names checks it was given; anything else is a bug in the state.
          if (found === undefined) throw new Error(`The limit state asked to seed ${quota.key}, which was not checked.`);
          return found;
        });
        await Promise.all(toSeed.map(seed));
      }
    },
  };

  function admission(sides: readonly Side[], steady: readonly LimitCheck[], leaseId: string, currency: string | undefined): Admission {
    let settled = false;
    return {
      async settle(totalTokens: number, cost?: Cost): Promise<void> {
        // Marked before the await, so a second call during the first is ignored too. If the state
        // fails, the charge and the slot are lost rather than retried twice.
        if (settled) return;
        settled = true;
        const at = now();
        // Requests checks are kept out: settle does nothing with them.
        const checks = [...steady.filter((check) => check.kind !== 'requests'), ...quotaChecks(sides, at).map((quota) => quota.check)];
        if (checks.length > 0) await state.settle(checks, totalTokens, at, leaseId);
        // Budgets are charged in the currency they were checked in. A fallback priced in another
        // currency is on its usage row, and reaches that currency's counters when they are next
        // seeded (docs/decisions/0017-spend.md).
        if (cost === undefined || cost.micros <= 0 || cost.currency !== currency) return;
        const budgets = budgetChecks(sides, at, currency).map((budget) => budget.check);
        if (budgets.length > 0) await state.settle(budgets, cost.micros, at, leaseId);
      },
    };
  }
}
