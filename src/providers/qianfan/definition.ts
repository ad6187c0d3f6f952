// The `qianfan` provider as the provider list knows it (src/providers/definitions.ts).
import type { ProviderDefinition } from '../definition.js';
import { resolveWithDefaults } from '../shared/config.js';
import { qianfanConfigSchema, qianfanDefaults, type ResolvedQianfanProvider } from './config.js';
import { createQianfanAdapter } from './index.js';

export const qianfanProvider: ProviderDefinition<typeof qianfanConfigSchema, ResolvedQianfanProvider> = {
  type: 'qianfan',
  schema: qianfanConfigSchema,
  defaults: qianfanDefaults,
  resolve: (config, context) => resolveWithDefaults(config, qianfanDefaults, context),
  createAdapter: createQianfanAdapter,
};
