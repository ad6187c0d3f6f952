// The `qianfan` entry of sluice.yaml: its schema, defaults and resolved form.
import { z } from 'zod';
import { httpConnectionDefaults, httpConnectionFields, httpUrlSchema, providerCommonFields, type ResolvedConfig } from '../shared/config.js';

export const qianfanConfigSchema = z.strictObject({
  type: z.literal('qianfan'),
  /** https://aip.baidubce.com by default; the token and chat paths are added to it. */
  baseUrl: httpUrlSchema('https://aip.baidubce.com').optional(),
  apiKey: z.string().min(1),
  secretKey: z.string().min(1),
  /** Model name → chat endpoint (`completions_pro`, `ernie-speed-128k`, …); merged over the known ones. */
  endpoints: z.record(z.string().min(1), z.string().min(1)).optional(),
  ...httpConnectionFields,
  ...providerCommonFields,
});

export const qianfanDefaults = {
  baseUrl: 'https://aip.baidubce.com',
  ...httpConnectionDefaults,
};

export type QianfanProviderConfig = z.output<typeof qianfanConfigSchema>;
export type ResolvedQianfanProvider = ResolvedConfig<QianfanProviderConfig, typeof qianfanDefaults>;
