import { describe, expect, it } from 'vitest';
import { costOf, formatMicros, toMicros, type Price } from './cost.js';

const gpt4oMini: Price = { inputMicrosPerMillion: 150_000, outputMicrosPerMillion: 600_000, cachedInputMicrosPerMillion: 75_000, currency: 'USD' };

describe('toMicros reads amounts of money exactly', () => {
  it('takes up to six decimals from the decimal text, not from binary arithmetic', () => {
    expect(toMicros(0.15)).toBe(150_000);
    expect(toMicros(0.075)).toBe(75_000);
    // 0.000001 prints as 0.000001; 1.1 × 10^6 in binary is 1100000.0000000002.
    expect(toMicros(1.1)).toBe(1_100_000);
    expect(toMicros(0.000001)).toBe(1);
    expect(toMicros(0)).toBe(0);
    expect(toMicros(2500)).toBe(2_500_000_000);
  });

  it('refuses what is finer than a micro-unit, negative, not finite or beyond 2^53 micro-units', () => {
    expect(toMicros(0.0000001)).toBeUndefined();
    expect(toMicros(0.1234567)).toBeUndefined();
    expect(toMicros(-1)).toBeUndefined();
    expect(toMicros(Number.NaN)).toBeUndefined();
    expect(toMicros(Number.POSITIVE_INFINITY)).toBeUndefined();
    expect(toMicros(1e16)).toBeUndefined();
  });
});

describe('formatMicros', () => {
  it('writes six decimals without floating point', () => {
    expect(formatMicros(0)).toBe('0.000000');
    expect(formatMicros(1)).toBe('0.000001');
    expect(formatMicros(1_500_000)).toBe('1.500000');
    expect(formatMicros(Number.MAX_SAFE_INTEGER)).toBe('9007199254.740991');
    expect(formatMicros(-25)).toBe('-0.000025');
  });
});

describe('costOf', () => {
  it('prices prompt and completion tokens per million and rounds half up once', () => {
    // 1000 × 0.15 + 500 × 0.60 = 150 + 300 micro-dollars.
    expect(costOf({ promptTokens: 1000, completionTokens: 500, totalTokens: 1500, estimated: false }, gpt4oMini)).toStrictEqual({ micros: 450, currency: 'USD' });
    // 3 × 0.15 + 1 × 0.60 = 1.05 → 1; 7 × 0.15 + 1 × 0.60 = 1.65 → 2; 10 × 0.15 = 1.5 → 2.
    expect(costOf({ promptTokens: 3, completionTokens: 1, totalTokens: 4, estimated: false }, gpt4oMini).micros).toBe(1);
    expect(costOf({ promptTokens: 7, completionTokens: 1, totalTokens: 8, estimated: false }, gpt4oMini).micros).toBe(2);
    expect(costOf({ promptTokens: 10, completionTokens: 0, totalTokens: 10, estimated: false }, gpt4oMini).micros).toBe(2);
  });

  it('prices cached prompt tokens at the cached-input price, as a part of the prompt', () => {
    // 600 uncached × 0.15 + 400 cached × 0.075 + 0 = 90 + 30.
    expect(costOf({ promptTokens: 1000, cachedPromptTokens: 400, completionTokens: 0, totalTokens: 1000, estimated: false }, gpt4oMini).micros).toBe(120);
    // More cached than prompt tokens (a confused upstream) is capped at the prompt.
    expect(costOf({ promptTokens: 10, cachedPromptTokens: 50, completionTokens: 0, totalTokens: 10, estimated: false }, gpt4oMini).micros).toBe(1);
  });

  it('stays exact where tokens × price passes 2^53', () => {
    const expensive: Price = { inputMicrosPerMillion: 9_000_000_000, outputMicrosPerMillion: 9_000_000_000, cachedInputMicrosPerMillion: 9_000_000_000, currency: 'EUR' };
    // 10^7 × 9 × 10^9 = 9 × 10^16 > 2^53 before the division by 10^6.
    expect(costOf({ promptTokens: 10_000_000, completionTokens: 1, totalTokens: 10_000_001, estimated: false }, expensive)).toStrictEqual({ micros: 90_000_009_000, currency: 'EUR' });
  });

  it('counts tokens that are not whole non-negative numbers as none', () => {
    expect(costOf({ promptTokens: -5, completionTokens: Number.NaN, totalTokens: 0, estimated: true }, gpt4oMini).micros).toBe(0);
  });
});
