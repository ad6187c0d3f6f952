// The `signed-http` provider as the provider list knows it (src/providers/definitions.ts).
import type { ProviderDefinition } from '../definition.js';
import { resolveWithDefaults } from '../shared/config.js';
import { signedHttpConfigSchema, signedHttpDefaults, type ResolvedSignedHttpProvider } from './config.js';
import { createSignedHttpAdapter } from './index.js';

export const signedHttpProvider: ProviderDefinition<typeof signedHttpConfigSchema, ResolvedSignedHttpProvider> = {
  type: 'signed-http',
  schema: signedHttpConfigSchema,
  defaults: signedHttpDefaults,
  resolve: (config, context) => resolveWithDefaults(config, signedHttpDefaults, context),
  createAdapter: createSignedHttpAdapter,
};
