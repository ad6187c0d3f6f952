// The pieces of provider configuration every provider, or every HTTP provider, shares: the
// timeouts schema, the common `models`/`timeouts` fields, the outbound connection fields, URL
// schemas with their error messages, and the one way defaults are applied to a parsed entry.
import { z } from 'zod';
import type { Timeouts } from '../../contract/provider.js';
import type { ResolveContext } from '../definition.js';

const milliseconds = z.number().int().nonnegative();
export const positiveInt = z.number().int().positive();

export const timeoutsSchema = z.strictObject({
  /** TCP + TLS connect to the provider. */
  connectMs: positiveInt.optional(),
  /** From sending the request until the first event of the answer. */
  firstByteMs: positiveInt.optional(),
  /** Longest gap between two events of the answer. */
  idleMs: positiveInt.optional(),
  /** The whole answer; 0 or absent means no limit. */
  totalMs: milliseconds.optional(),
});

/** The provider's own rate limits for this gateway's account, enforced before sending (docs/pools.md). */
export const providerLimitsSchema = z.strictObject({
  requestsPerMinute: positiveInt.optional(),
  tokensPerMinute: positiveInt.optional(),
});

/** Fields every provider has, spread last into its schema. */
export const providerCommonFields = {
  /** Model names advertised in GET /v1/models for this provider. */
  models: z.array(z.string().min(1)).optional(),
  timeouts: timeoutsSchema.optional(),
  /** The provider's quota for us: requests and tokens per minute, admitted before each request. */
  limits: providerLimitsSchema.optional(),
};

/**
 * `apiKeys`: several keys of one provider entry, rotated by the pool router (docs/pools.md); a key
 * the provider refuses with 401/403 is taken out alone. `apiKey` is the one-key form.
 */
export const apiKeysSchema = z.array(z.string().min(1)).min(1, 'list at least one key, or use apiKey');

/** The keys of an entry with `apiKey` and/or `apiKeys`, in order, without repeats. */
export function apiKeysOf(config: { readonly apiKey?: string | undefined; readonly apiKeys?: readonly string[] | undefined }): string[] {
  const keys = [...(config.apiKey !== undefined ? [config.apiKey] : []), ...(config.apiKeys ?? [])];
  return [...new Set(keys)];
}

/** Refuses an entry that has neither `apiKey` nor `apiKeys`, naming `apiKey`. */
export function requireApiKey(config: { readonly apiKey?: string | undefined; readonly apiKeys?: readonly string[] | undefined }, context: z.RefinementCtx): void {
  if (config.apiKey === undefined && config.apiKeys === undefined) {
    context.addIssue({ code: 'custom', path: ['apiKey'], message: 'set apiKey, or apiKeys for several keys' });
  }
}

/** An http(s) URL; the message shows `example` when given. */
export function httpUrlSchema(example?: string): z.ZodURL {
  return z.url({ protocol: /^https?$/, error: example === undefined ? 'must be an http(s) URL' : `must be an http(s) URL such as ${example}` });
}

/** Outbound HTTP proxy for this provider only, e.g. http://proxy.internal:3128. */
export const proxyUrlSchema = z.url({ protocol: /^https?$/, error: 'must be an http(s) proxy URL such as http://proxy:3128' });

/** Extra headers sent on every upstream request (for example an organisation id). */
export const extraHeadersSchema = z.record(z.string(), z.string());

/** How an HTTP provider connects, spread into its schema before the common fields. */
export const httpConnectionFields = {
  /** Outbound HTTP proxy for this provider only, e.g. http://proxy.internal:3128. */
  proxy: proxyUrlSchema.optional(),
  /** Largest single upstream SSE event accepted, in bytes. */
  maxEventBytes: positiveInt.optional(),
  /** Keep-alive connections per upstream origin. */
  maxConnections: positiveInt.optional(),
};

/** The defaults of httpConnectionFields. */
export const httpConnectionDefaults = {
  maxEventBytes: 16 * 1024 * 1024,
  maxConnections: 256,
};

/**
 * A provider's config as its adapter reads it: the parsed entry with `defaults` filled in, its id,
 * and its timeouts merged over the top-level ones.
 */
export type ResolvedConfig<Config extends object, Defaults extends object> = Readonly<Omit<Config, 'timeouts'>> &
  Readonly<Defaults> & { readonly id: string; readonly timeouts: Timeouts };

/** Fills in `defaults` where the entry left a setting out (zod leaves absent optional keys undefined). */
export function resolveWithDefaults<Config extends object, Defaults extends object>(config: Config, defaults: Defaults, context: ResolveContext): ResolvedConfig<Config, Defaults> {
  const filled: Record<string, unknown> = {};
  for (const [key, fallback] of Object.entries(defaults)) {
    const value: unknown = (config as Record<string, unknown>)[key];
    filled[key] = value === undefined ? fallback : value;
  }
  return { ...config, ...(filled as Defaults), id: context.id, timeouts: context.timeouts };
}
