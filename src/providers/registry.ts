// Creates one adapter per configured provider.
import type { Config } from '../config/config.js';
import { createAnthropicAdapter } from './anthropic/index.js';
import { createMockAdapter } from './mock/index.js';
import { createSparkAdapter } from './spark/index.js';
import { createQianfanAdapter } from './qianfan/index.js';
import { createSignedHttpAdapter } from './signed-http/index.js';
import { createOpenAiAdapter } from './openai/index.js';
import type { ProviderAdapter, ProviderDependencies } from '../contract/provider.js';

export type ProviderRegistry = ReadonlyMap<string, ProviderAdapter>;

export function createProviderRegistry(config: Config, dependencies: ProviderDependencies): ProviderRegistry {
  const registry = new Map<string, ProviderAdapter>();
  for (const provider of Object.values(config.providers)) {
    switch (provider.type) {
      case 'openai':
        registry.set(provider.id, createOpenAiAdapter(provider, config.outboundProxy, dependencies));
        break;
      case 'anthropic':
        registry.set(provider.id, createAnthropicAdapter(provider, config.outboundProxy, dependencies));
        break;
      case 'spark':
        registry.set(provider.id, createSparkAdapter(provider, dependencies));
        break;
      case 'qianfan':
        registry.set(provider.id, createQianfanAdapter(provider, config.outboundProxy, dependencies));
        break;
      case 'signed-http':
        registry.set(provider.id, createSignedHttpAdapter(provider, config.outboundProxy, dependencies));
        break;
      case 'mock':
        registry.set(provider.id, createMockAdapter(provider));
        break;
    }
  }
  return registry;
}
