// The `openai` provider as the provider list knows it (src/providers/definitions.ts).
import type { ProviderDefinition } from '../definition.js';
import { apiKeysOf, resolveWithDefaults } from '../shared/config.js';
import { openAiConfigSchema, openAiDefaults, type ResolvedOpenAiProvider } from './config.js';
import { createOpenAiAdapter } from './index.js';

export const openAiProvider: ProviderDefinition<typeof openAiConfigSchema, ResolvedOpenAiProvider> = {
  type: 'openai',
  schema: openAiConfigSchema,
  defaults: openAiDefaults,
  resolve: (config, context) => ({ ...resolveWithDefaults(config, openAiDefaults, context), apiKeys: apiKeysOf(config) }),
  createAdapter: createOpenAiAdapter,
};
