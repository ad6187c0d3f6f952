// What a provider is to the rest of Sluice: one ProviderDefinition per folder of src/providers,
// named in definitions.ts. The config schema's union, the defaults, the resolution of each
// provider's entry and the adapter registry are all built from that list, so adding a provider
// touches nothing else (docs/providers/adding-a-provider.md).
import type { z } from 'zod';
import type { OutboundProxy, ProviderAdapter, ProviderDependencies, Timeouts } from '../contract/provider.js';

/** The schema of one entry under `providers:` in sluice.yaml: a strict object with its `type` literal. */
export type ProviderConfigSchema = z.ZodObject<{ type: z.ZodLiteral<string> } & z.core.$ZodShape, z.core.$strict>;

/** What every provider's config has once resolved. */
export interface ResolvedProviderConfig {
  readonly type: string;
  /** The provider id: its key under `providers:`, used in `provider/model`, logs and errors. */
  readonly id: string;
  readonly timeouts: Timeouts;
  /** Model names advertised in GET /v1/models; each adapter has its own fallback list. */
  readonly models?: readonly string[] | undefined;
  /** The provider's quota for us (`limits`), admitted before each request (routing/provider-quotas.ts). */
  readonly limits?: { readonly requestsPerMinute?: number | undefined; readonly tokensPerMinute?: number | undefined } | undefined;
  /**
   * The keys the pool router rotates (openai, anthropic, azure: `apiKey` and `apiKeys`); absent for
   * providers whose credentials are one fixed set. The chosen one reaches the adapter as `CallContext.apiKey`.
   */
  readonly apiKeys?: readonly string[] | undefined;
}

/** What config/load.ts knows of an entry besides its fields. */
export interface ResolveContext {
  readonly id: string;
  /** The entry's timeouts merged over the top-level `timeouts` and their defaults. */
  readonly timeouts: Timeouts;
}

/** What an adapter factory receives besides its resolved config. */
export interface AdapterDependencies extends ProviderDependencies {
  /** HTTPS_PROXY / HTTP_PROXY / NO_PROXY, for providers without a `proxy` of their own. */
  readonly outboundProxy: OutboundProxy;
}

export interface ProviderDefinition<Schema extends ProviderConfigSchema, Resolved extends ResolvedProviderConfig> {
  /** The `type:` of the entry in sluice.yaml. */
  readonly type: z.output<Schema>['type'];
  /** Every setting, its doc comment and its error message; unknown settings are refused. */
  readonly schema: Schema;
  /** Values for the settings an entry may leave out; `resolve` fills them in. */
  readonly defaults: Readonly<Partial<z.output<Schema>>>;
  /** A parsed entry → the config the adapter reads (defaults applied, id, timeouts). */
  resolve(config: z.output<Schema>, context: ResolveContext): Resolved;
  /** One adapter per configured provider; it owns its connection pool until close(). */
  createAdapter(config: Resolved, dependencies: AdapterDependencies): ProviderAdapter;
}

/**
 * Any definition, as the list is walked. Each is checked against its own types where it is
 * written; `resolve` and `createAdapter` are methods, whose parameters TypeScript compares
 * bivariantly, so every definition fits here. Callers pair a config with the definition of its
 * `type` (definitions.ts), which is what makes that sound.
 */
export type SomeProviderDefinition = ProviderDefinition<ProviderConfigSchema, ResolvedProviderConfig>;
