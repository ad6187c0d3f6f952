// The `mock` provider as the provider list knows it (src/providers/definitions.ts).
import type { ProviderDefinition } from '../definition.js';
import { resolveWithDefaults } from '../shared/config.js';
import { mockConfigSchema, mockDefaults, type ResolvedMockProvider } from './config.js';
import { createMockAdapter } from './index.js';

export const mockProvider: ProviderDefinition<typeof mockConfigSchema, ResolvedMockProvider> = {
  type: 'mock',
  schema: mockConfigSchema,
  defaults: mockDefaults,
  resolve: (config, context) => resolveWithDefaults(config, mockDefaults, context),
  createAdapter: (config) => createMockAdapter(config),
};
