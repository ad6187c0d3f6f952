// Every provider type Sluice knows, in one list. The config schema's union (config/schema.ts), the
// resolved provider type (config/config.ts), each entry's resolution (config/load.ts) and the
// adapter registry (registry.ts) are built from it: adding a provider is its folder plus one entry
// here (docs/providers/adding-a-provider.md).
import type { z } from 'zod';
import type { ResolveContext, SomeProviderDefinition } from './definition.js';
import { openAiProvider } from './openai/definition.js';
import { azureProvider } from './azure/definition.js';
import { anthropicProvider } from './anthropic/definition.js';
import { sparkProvider } from './spark/definition.js';
import { qianfanProvider } from './qianfan/definition.js';
import { signedHttpProvider } from './signed-http/definition.js';
import { mockProvider } from './mock/definition.js';

/** In the order the "type must be one of" message names them. */
export const providerDefinitions = [openAiProvider, azureProvider, anthropicProvider, sparkProvider, qianfanProvider, signedHttpProvider, mockProvider] as const;

type ListedDefinition = (typeof providerDefinitions)[number];

export type ProviderType = ListedDefinition['type'];
/** A parsed entry under `providers:`, before defaults. */
export type ProviderConfig = z.output<ListedDefinition['schema']>;
/** A provider's config as Config.providers holds it: defaults applied, with its id and timeouts. */
export type ResolvedProvider = ReturnType<ListedDefinition['resolve']>;

const definitionsByType: ReadonlyMap<string, SomeProviderDefinition> = new Map(providerDefinitions.map((definition) => [definition.type, definition]));

/** The definition of a listed type; an unlisted one is a programming error (the schema refuses it). */
export function providerDefinition(type: ProviderType): SomeProviderDefinition {
  const definition = definitionsByType.get(type);
  if (!definition) throw new Error(`no provider definition for type "${type}"`);
  return definition;
}

/** Applies the defaults of the entry's own type. */
export function resolveProvider(config: ProviderConfig, context: ResolveContext): ResolvedProvider {
  // The schema union paired `config` with the definition of its `type`, so what that definition's
  // resolve returns is the member of ResolvedProvider for the same type.
  return providerDefinition(config.type).resolve(config, context) as ResolvedProvider;
}
