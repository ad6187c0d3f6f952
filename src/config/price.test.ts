import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from './load.js';
import { servedPrice } from './price.js';

const providers = { openai: { type: 'openai', baseUrl: 'https://api.openai.com/v1', apiKey: 'sk-test' }, claude: { type: 'anthropic', apiKey: 'sk-ant' } };

function problems(document: Record<string, unknown>): string[] {
  try {
    resolveConfig(document, {});
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw error;
  }
  return [];
}

describe('price and budget settings', () => {
  it('resolve to micro-units per million tokens, cachedInput defaulting to input and currency to USD', () => {
    const config = resolveConfig({ providers, models: { chat: { provider: 'openai', model: 'gpt-4o-mini', price: { input: 0.15, output: 0.6 } } }, limits: { perUser: { dailyBudget: 2.5 } } }, {});
    expect(config.models['chat']?.price).toStrictEqual({ inputMicrosPerMillion: 150_000, outputMicrosPerMillion: 600_000, cachedInputMicrosPerMillion: 150_000, currency: 'USD' });
    expect(config.limits.perUser).toStrictEqual({ dailyBudgetMicros: 2_500_000 });
  });

  it('report every bad amount and currency with its path', () => {
    expect(
      problems({
        providers,
        models: { chat: { provider: 'openai', price: { input: -1, output: 0.0000001, currency: 'usd' } } },
        prices: { 'gpt-4o': { input: 1, output: 1 } },
        limits: { users: { alice: { monthlyBudget: 0 } } },
      }),
    ).toStrictEqual([
      'models.chat.price.input: must be 0 or more, with at most six decimal places (0.000001 is the smallest unit)',
      'models.chat.price.output: must be 0 or more, with at most six decimal places (0.000001 is the smallest unit)',
      'models.chat.price.currency: must be a three-letter ISO 4217 code in capitals, such as USD, EUR or CNY',
      'prices.gpt-4o: "gpt-4o" is not allowed as a name here: keys are provider/model, such as openai/gpt-4o-mini',
      'limits.users.alice.monthlyBudget: must be more than 0',
    ]);
  });
});

describe('servedPrice', () => {
  const config = resolveConfig(
    {
      providers,
      models: {
        chat: { provider: 'openai', model: 'gpt-4o-mini', price: { input: 1, output: 2 }, fallbacks: ['sonnet', 'openai/gpt-4o'] },
        sonnet: { provider: 'claude', model: 'claude-sonnet-4-5', price: { input: 3, output: 15, currency: 'EUR' } },
        plain: { provider: 'openai', model: 'gpt-4o' },
      },
      prices: { 'openai/gpt-4o': { input: 5, output: 10 } },
    },
    {},
  );

  it('takes the alias price, a fallback alias price, or the served deployment price, in that order', () => {
    expect(servedPrice(config, 'chat')?.inputMicrosPerMillion).toBe(1_000_000);
    expect(servedPrice(config, 'chat', 'openai/gpt-4o-mini')?.inputMicrosPerMillion).toBe(1_000_000);
    expect(servedPrice(config, 'chat', 'claude/claude-sonnet-4-5')?.currency).toBe('EUR');
    expect(servedPrice(config, 'chat', 'openai/gpt-4o')?.inputMicrosPerMillion).toBe(5_000_000);
    // An alias without a price of its own falls back to its route's provider/model price.
    expect(servedPrice(config, 'plain')?.inputMicrosPerMillion).toBe(5_000_000);
    expect(servedPrice(config, 'openai/gpt-4o')?.inputMicrosPerMillion).toBe(5_000_000);
    expect(servedPrice(config, 'openai/o3')).toBeUndefined();
  });
});
