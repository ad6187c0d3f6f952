// The `mock` entry of sluice.yaml: its schema, defaults and resolved form.
import { z } from 'zod';
import { positiveInt, providerCommonFields, type ResolvedConfig } from '../shared/config.js';

export const mockConfigSchema = z.strictObject({
  type: z.literal('mock'),
  /** How many text deltas the demo answer is cut into. */
  chunkCount: positiveInt.optional(),
  /** Delay before each delta. */
  delayMs: z.number().int().nonnegative().optional(),
  ...providerCommonFields,
});

export const mockDefaults = {
  chunkCount: 24,
  delayMs: 20,
};

export type MockProviderConfig = z.output<typeof mockConfigSchema>;
export type ResolvedMockProvider = ResolvedConfig<MockProviderConfig, typeof mockDefaults>;
