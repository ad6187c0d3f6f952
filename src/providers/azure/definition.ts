// The `azure` provider as the provider list knows it (src/providers/definitions.ts).
import type { ProviderDefinition } from '../definition.js';
import { apiKeysOf, resolveWithDefaults } from '../shared/config.js';
import { azureConfigSchema, azureDefaults, type ResolvedAzureProvider } from './config.js';
import { createAzureAdapter } from './index.js';

export const azureProvider: ProviderDefinition<typeof azureConfigSchema, ResolvedAzureProvider> = {
  type: 'azure',
  schema: azureConfigSchema,
  defaults: azureDefaults,
  resolve: (config, context) => ({ ...resolveWithDefaults(config, azureDefaults, context), apiKeys: apiKeysOf(config) }),
  createAdapter: createAzureAdapter,
};
