// The `spark` entry of sluice.yaml: its schema, defaults and resolved form.
import { z } from 'zod';
import { providerCommonFields, proxyUrlSchema, type ResolvedConfig } from '../shared/config.js';

export const sparkConfigSchema = z.strictObject({
  type: z.literal('spark'),
  /** wss://spark-api.xf-yun.com by default; the version path is added per model. */
  baseUrl: z.url({ protocol: /^wss?$/, error: 'must be a ws(s) URL such as wss://spark-api.xf-yun.com' }).optional(),
  appId: z.string().min(1),
  apiKey: z.string().min(1),
  apiSecret: z.string().min(1),
  /** Model name → WebSocket path and `domain`; merged over the known versions. */
  versions: z.record(z.string().min(1), z.strictObject({ path: z.string().startsWith('/'), domain: z.string().min(1) })).optional(),
  /** Outbound HTTP proxy for this provider only (a CONNECT tunnel carries the WebSocket), e.g. http://proxy.internal:3128. */
  proxy: proxyUrlSchema.optional(),
  ...providerCommonFields,
});

export const sparkDefaults = {
  baseUrl: 'wss://spark-api.xf-yun.com',
};

export type SparkProviderConfig = z.output<typeof sparkConfigSchema>;
export type ResolvedSparkProvider = ResolvedConfig<SparkProviderConfig, typeof sparkDefaults>;
