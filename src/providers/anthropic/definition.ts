// The `anthropic` provider as the provider list knows it (src/providers/definitions.ts).
import type { ProviderDefinition } from '../definition.js';
import { apiKeysOf, resolveWithDefaults } from '../shared/config.js';
import { anthropicConfigSchema, anthropicDefaults, type ResolvedAnthropicProvider } from './config.js';
import { createAnthropicAdapter } from './index.js';

export const anthropicProvider: ProviderDefinition<typeof anthropicConfigSchema, ResolvedAnthropicProvider> = {
  type: 'anthropic',
  schema: anthropicConfigSchema,
  defaults: anthropicDefaults,
  resolve: (config, context) => ({ ...resolveWithDefaults(config, anthropicDefaults, context), apiKeys: apiKeysOf(config) }),
  createAdapter: createAnthropicAdapter,
};
