// Creates one adapter per configured provider, each by the definition of its type.
import type { OutboundProxy, ProviderAdapter, ProviderDependencies } from '../contract/provider.js';
import { providerDefinition, type ResolvedProvider } from './definitions.js';

export type ProviderRegistry = ReadonlyMap<string, ProviderAdapter>;

/** The part of Config the registry reads. */
export interface ProviderRegistryConfig {
  readonly providers: Readonly<Record<string, ResolvedProvider>>;
  readonly outboundProxy: OutboundProxy;
}

export function createProviderRegistry(config: ProviderRegistryConfig, dependencies: ProviderDependencies): ProviderRegistry {
  const registry = new Map<string, ProviderAdapter>();
  for (const provider of Object.values(config.providers)) {
    registry.set(provider.id, providerDefinition(provider.type).createAdapter(provider, { ...dependencies, outboundProxy: config.outboundProxy }));
  }
  return registry;
}
