// The `openai` entry of sluice.yaml: its schema, defaults and resolved form.
import { z } from 'zod';
import { apiKeysSchema, extraHeadersSchema, httpConnectionDefaults, httpConnectionFields, httpUrlSchema, providerCommonFields, type ResolvedConfig } from '../shared/config.js';

export const openAiConfigSchema = z.strictObject({
  type: z.literal('openai'),
  baseUrl: httpUrlSchema('https://api.openai.com/v1'),
  apiKey: z.string().min(1).optional(),
  /** Several keys, rotated; see docs/pools.md. */
  apiKeys: apiKeysSchema.optional(),
  /** Extra headers sent on every upstream request (for example an organisation id). */
  headers: extraHeadersSchema.optional(),
  ...httpConnectionFields,
  ...providerCommonFields,
});

export const openAiDefaults = { ...httpConnectionDefaults };

export type OpenAiProviderConfig = z.output<typeof openAiConfigSchema>;
export type ResolvedOpenAiProvider = ResolvedConfig<OpenAiProviderConfig, typeof openAiDefaults> & { readonly apiKeys: readonly string[] };
