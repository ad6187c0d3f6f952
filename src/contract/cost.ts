// Money, exactly: a price per million tokens and the cost of one generation, both in integer
// micro-units of a currency (1 USD = 1 000 000 micro-USD). Floating-point dollars would drift
// when thousands of rows are summed and budgets compared against the sum; integers do not. The one
// product that can pass 2^53 (tokens × micro-units per million tokens) is done in BigInt.
// docs/spend.md explains the units to operators; docs/decisions/0017-spend.md why.
import type { Usage } from './stream-event.js';

const microsPerUnit = 1_000_000;
const tokensPerMillion = 1_000_000n;

/** A model's price, resolved from config: whole micro-units per million tokens. */
export interface Price {
  /** Micro-units per million prompt tokens not read from a cache. */
  readonly inputMicrosPerMillion: number;
  /** Micro-units per million completion tokens. */
  readonly outputMicrosPerMillion: number;
  /** Micro-units per million cached prompt tokens; the input price when the config gives none. */
  readonly cachedInputMicrosPerMillion: number;
  /** ISO 4217 code, upper case (`USD`, `EUR`, `CNY`). */
  readonly currency: string;
}

/** What one generation cost. */
export interface Cost {
  /** Whole micro-units, rounded half up once over the whole generation. */
  readonly micros: number;
  readonly currency: string;
}

/** Currency codes: three upper-case letters, as ISO 4217 writes them. */
export const currencyPattern = /^[A-Z]{3}$/;

/** A non-negative decimal with at most six decimal places, as JavaScript prints a number. */
const decimalPattern = /^(\d+)(?:\.(\d{1,6}))?$/;

/**
 * An amount of money (a price per million tokens, a budget) as whole micro-units; undefined when
 * it is negative, not finite, finer than a micro-unit (more than six decimals) or beyond 2^53
 * micro-units. Read from the number's decimal text, so 0.075 is 75 000 exactly, not whatever
 * 0.075 × 10^6 rounds to in binary.
 */
export function toMicros(amount: number): number | undefined {
  if (!Number.isFinite(amount) || amount < 0) return undefined;
  const match = decimalPattern.exec(String(amount));
  if (match === null) return undefined;
  const micros = BigInt(match[1] ?? '0') * BigInt(microsPerUnit) + BigInt((match[2] ?? '').padEnd(6, '0'));
  return micros <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(micros) : undefined;
}

/**
 * Micro-units as a decimal with six places: 1 500 000 → `1.500000`. Exact for any safe integer
 * (no floating-point division), for reports and CSV.
 */
export function formatMicros(micros: number): string {
  const sign = micros < 0 ? '-' : '';
  const digits = String(Math.abs(Math.trunc(micros))).padStart(7, '0');
  return `${sign}${digits.slice(0, -6)}.${digits.slice(-6)}`;
}

/**
 * The cost of `usage` at `price`: uncached prompt tokens at the input price, cached ones at the
 * cached-input price, completion tokens at the output price, summed exactly and rounded half up
 * to a whole micro-unit once. Token counts that are not whole non-negative numbers count as 0.
 * An estimated usage is priced like any other: the row says it was estimated.
 */
export function costOf(usage: Usage, price: Price): Cost {
  const prompt = wholeTokens(usage.promptTokens);
  const cached = Math.min(prompt, wholeTokens(usage.cachedPromptTokens ?? 0));
  const completion = wholeTokens(usage.completionTokens);
  const scaled =
    BigInt(prompt - cached) * BigInt(price.inputMicrosPerMillion) +
    BigInt(cached) * BigInt(price.cachedInputMicrosPerMillion) +
    BigInt(completion) * BigInt(price.outputMicrosPerMillion);
  const micros = (scaled + tokensPerMillion / 2n) / tokensPerMillion;
  return { micros: Number(micros), currency: price.currency };
}

function wholeTokens(count: number): number {
  return Number.isSafeInteger(count) && count > 0 ? count : 0;
}
