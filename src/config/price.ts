// Prices and budgets in the config (docs/spend.md): the zod schemas of `models.<alias>.price`, the
// top-level `prices:` map (for `provider/model` names no alias covers) and the `dailyBudget` /
// `monthlyBudget` amounts, their resolution to whole micro-units, and `servedPrice`, the one
// lookup of what a served request costs per token.
import { z } from 'zod';
import { currencyPattern, toMicros, type Price } from '../contract/cost.js';
import type { Config } from './config.js';

/** The currency of a price that names none. */
export const defaultCurrency = 'USD';

/** An amount of money in the config: a number ≥ 0 with at most six decimals. */
export const moneySchema = z
  .number({ error: 'must be a number such as 0.15' })
  .refine((value) => toMicros(value) !== undefined, 'must be 0 or more, with at most six decimal places (0.000001 is the smallest unit)');

/** A budget: a positive amount of money. */
export const budgetSchema = moneySchema.refine((value) => value > 0, 'must be more than 0');

/** `price: {input, output, cachedInput?, currency?}`, per million tokens. */
export const priceSchema = z.strictObject({
  /** Per million prompt tokens. */
  input: moneySchema,
  /** Per million completion tokens. */
  output: moneySchema,
  /** Per million prompt tokens read from the provider's prompt cache; default: the input price. */
  cachedInput: moneySchema.optional(),
  /** ISO 4217 code; default USD. */
  currency: z.string().regex(currencyPattern, 'must be a three-letter ISO 4217 code in capitals, such as USD, EUR or CNY').optional(),
});

/** `prices:`, keyed by `provider/model`. */
export const pricesSchema = z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*\/.+$/, 'keys are provider/model, such as openai/gpt-4o-mini'), priceSchema);

export type PriceConfig = z.infer<typeof priceSchema>;

/** A validated price as whole micro-units per million tokens. */
export function resolvePrice(raw: PriceConfig): Price {
  // The schema let through only amounts toMicros accepts.
  const micros = (amount: number): number => toMicros(amount) ?? 0;
  const input = micros(raw.input);
  return {
    inputMicrosPerMillion: input,
    outputMicrosPerMillion: micros(raw.output),
    cachedInputMicrosPerMillion: raw.cachedInput !== undefined ? micros(raw.cachedInput) : input,
    currency: raw.currency ?? defaultCurrency,
  };
}

/** A validated budget as whole micro-units. */
export function budgetMicros(amount: number): number {
  return toMicros(amount) ?? 0;
}

/**
 * The price of a request for the model name `alias` (an alias from `models:`, or a
 * `provider/model` name) that `deployment` (`provider/model`, the upstream that answered) served;
 * without `deployment`, the price of the alias's first choice (what admission checks budgets in).
 * In order: the alias's own `price` when its own route served; the price of the fallback alias
 * whose route served; `prices.<deployment>`; for a direct name, `prices.<alias>`. Undefined: the
 * model has no price, and the request costs nothing and counts towards no budget.
 *
 * Once models are pools of deployments, a deployment's own price goes first in this list, and a
 * deployment of the alias's pool counts as "its own route"; callers do not change.
 */
export function servedPrice(config: Pick<Config, 'models' | 'prices'>, alias: string, deployment?: string): Price | undefined {
  const route = config.models[alias];
  if (route === undefined) return config.prices[deployment ?? alias] ?? config.prices[alias];
  const primary = `${route.provider}/${route.model}`;
  if (deployment === undefined || deployment === primary) return route.price ?? config.prices[primary];
  for (const name of route.fallbacks) {
    const fallback = config.models[name];
    if (fallback !== undefined && `${fallback.provider}/${fallback.model}` === deployment && fallback.price !== undefined) return fallback.price;
  }
  return config.prices[deployment];
}
