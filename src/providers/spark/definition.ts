// The `spark` provider as the provider list knows it (src/providers/definitions.ts).
import type { ProviderDefinition } from '../definition.js';
import { resolveWithDefaults } from '../shared/config.js';
import { sparkConfigSchema, sparkDefaults, type ResolvedSparkProvider } from './config.js';
import { createSparkAdapter } from './index.js';

export const sparkProvider: ProviderDefinition<typeof sparkConfigSchema, ResolvedSparkProvider> = {
  type: 'spark',
  schema: sparkConfigSchema,
  defaults: sparkDefaults,
  resolve: (config, context) => resolveWithDefaults(config, sparkDefaults, context),
  createAdapter: createSparkAdapter,
};
