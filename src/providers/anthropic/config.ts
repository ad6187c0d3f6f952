// The `anthropic` entry of sluice.yaml: its schema, defaults and resolved form.
import { z } from 'zod';
import { apiKeysSchema, requireApiKey, extraHeadersSchema, httpConnectionDefaults, httpConnectionFields, httpUrlSchema, positiveInt, providerCommonFields, type ResolvedConfig } from '../shared/config.js';

export const anthropicConfigSchema = z.strictObject({
  type: z.literal('anthropic'),
  /** Without the /v1 suffix. */
  baseUrl: httpUrlSchema('https://api.anthropic.com').optional(),
  apiKey: z.string().min(1).optional(),
  /** Several keys, rotated; see docs/pools.md. */
  apiKeys: apiKeysSchema.optional(),
  /** The `anthropic-version` header. */
  version: z.string().min(1).optional(),
  /** `max_tokens` when the request gives none (the Messages API requires it). */
  maxTokens: positiveInt.optional(),
  headers: extraHeadersSchema.optional(),
  ...httpConnectionFields,
  ...providerCommonFields,
}).superRefine(requireApiKey);

export const anthropicDefaults = {
  baseUrl: 'https://api.anthropic.com',
  version: '2023-06-01',
  maxTokens: 4096,
  ...httpConnectionDefaults,
};

export type AnthropicProviderConfig = z.output<typeof anthropicConfigSchema>;
export type ResolvedAnthropicProvider = ResolvedConfig<AnthropicProviderConfig, typeof anthropicDefaults> & { readonly apiKeys: readonly string[] };
