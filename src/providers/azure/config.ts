// The `azure` entry of sluice.yaml: its schema, defaults and resolved form.
import { z } from 'zod';
import { apiKeysSchema, requireApiKey, extraHeadersSchema, httpConnectionDefaults, httpConnectionFields, httpUrlSchema, providerCommonFields, type ResolvedConfig } from '../shared/config.js';

export const azureConfigSchema = z.strictObject({
  type: z.literal('azure'),
  /** The resource's endpoint, https://<resource>.openai.azure.com; Sluice appends /openai/deployments/…. */
  endpoint: httpUrlSchema('https://my-resource.openai.azure.com'),
  /** Sent as the `api-key` header. */
  apiKey: z.string().min(1).optional(),
  /** Several keys, rotated; see docs/pools.md. */
  apiKeys: apiKeysSchema.optional(),
  /** The `api-version` query parameter. */
  apiVersion: z.string().min(1).optional(),
  /** Model name → deployment name; a model not listed is taken to be its own deployment's name. */
  deployments: z.record(z.string().min(1), z.string().min(1)).optional(),
  headers: extraHeadersSchema.optional(),
  ...httpConnectionFields,
  ...providerCommonFields,
}).superRefine(requireApiKey);

export const azureDefaults = {
  /** The latest generally available data-plane version (docs/providers/azure.md). */
  apiVersion: '2024-10-21',
  ...httpConnectionDefaults,
};

export type AzureProviderConfig = z.output<typeof azureConfigSchema>;
export type ResolvedAzureProvider = ResolvedConfig<AzureProviderConfig, typeof azureDefaults> & { readonly apiKeys: readonly string[] };
