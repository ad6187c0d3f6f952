// Resolves the model name a client asked for into its route: the alias's pool of deployments,
// then the pools of its fallbacks, with the router settings (docs/pools.md). Names are aliases
// from config, or `provider/model`, which is a pool of one.
import type { Config } from '../config/config.js';
import type { Timeouts, ProviderAdapter } from '../contract/provider.js';
import { SluiceError } from '../errors/sluice-error.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { Pool, PoolDeployment, PoolKey, Route } from './upstream-pools.js';

export interface Candidate {
  adapter: ProviderAdapter;
  /** The provider's own model name. */
  model: string;
  timeouts: Timeouts;
}

export interface ModelRouter {
  /** Throws `model_not_found` (param `model`) for a name that resolves to nothing. */
  resolve(name: string): Route;
  /** Every name a caller may use, for GET /v1/models. */
  list(): { id: string; provider: string }[];
  /** The pools of every alias, for the admin view. */
  pools(): Pool[];
}

export function createModelRouter(config: Config, providers: ProviderRegistry): ModelRouter {
  const keysOf = new Map<string, readonly PoolKey[]>();
  /** The keys of a provider entry: its `apiKeys` as `id#1…`, or one key the adapter holds itself. */
  function keys(providerId: string): readonly PoolKey[] {
    let found = keysOf.get(providerId);
    if (!found) {
      const provider = config.providers[providerId];
      const apiKeys: readonly string[] = provider && 'apiKeys' in provider ? provider.apiKeys : [];
      found = apiKeys.length > 0 ? apiKeys.map((apiKey, index) => ({ id: `${providerId}#${(index + 1).toString()}`, apiKey })) : [{ id: `${providerId}#1` }];
      keysOf.set(providerId, found);
    }
    return found;
  }

  function deployment(providerId: string, model: string, weight = 1, priority = 0): PoolDeployment | undefined {
    const adapter = providers.get(providerId);
    const provider = config.providers[providerId];
    if (!adapter || !provider || model === '') return undefined;
    return { id: `${providerId}/${model}`, provider: providerId, model, weight, priority, adapter, timeouts: provider.timeouts, keys: keys(providerId) };
  }

  const aliasPools = new Map<string, Pool>();
  for (const [alias, route] of Object.entries(config.models)) {
    const deployments = route.deployments.map((entry) => deployment(entry.provider, entry.model, entry.weight, entry.priority)).filter((found): found is PoolDeployment => found !== undefined);
    if (deployments.length > 0) aliasPools.set(alias, { name: alias, strategy: route.strategy, deployments });
  }

  function pool(name: string): Pool | undefined {
    const found = aliasPools.get(name);
    if (found) return found;
    const slash = name.indexOf('/');
    if (slash <= 0) return undefined;
    const single = deployment(name.slice(0, slash), name.slice(slash + 1));
    return single ? { name, strategy: 'ordered', deployments: [single] } : undefined;
  }

  return {
    resolve(name) {
      const primary = pool(name);
      if (!primary) {
        throw new SluiceError('model_not_found', {
          param: 'model',
          message: `The model "${name}" does not exist on this gateway; GET /v1/models lists the models you can use.`,
        });
      }
      const fallbacks = (config.models[name]?.fallbacks ?? []).map(pool).filter((found): found is Pool => found !== undefined);
      return { pools: [primary, ...fallbacks], settings: config.router };
    },
    list() {
      const seen = new Set<string>();
      const models: { id: string; provider: string }[] = [];
      const add = (id: string, provider: string) => {
        if (!seen.has(id)) {
          seen.add(id);
          models.push({ id, provider });
        }
      };
      for (const [alias, route] of Object.entries(config.models)) add(alias, route.provider);
      for (const adapter of providers.values()) for (const model of adapter.models) add(`${adapter.id}/${model}`, adapter.id);
      return models;
    },
    pools: () => [...aliasPools.values()],
  };
}
