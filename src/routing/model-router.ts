// Resolves the model name a client asked for into an ordered list of upstream candidates: the
// primary route, then its fallbacks. Names are aliases from config, or `provider/model`.
import type { Config } from '../config/config.js';
import type { Timeouts, ProviderAdapter } from '../contract/provider.js';
import { SluiceError } from '../errors/sluice-error.js';
import type { ProviderRegistry } from '../providers/registry.js';

export interface Candidate {
  adapter: ProviderAdapter;
  /** The provider's own model name. */
  model: string;
  timeouts: Timeouts;
}

export interface ModelRouter {
  /** Throws `model_not_found` (param `model`) for a name that resolves to nothing. */
  resolve(name: string): Candidate[];
  /** Every name a caller may use, for GET /v1/models. */
  list(): { id: string; provider: string }[];
}

export function createModelRouter(config: Config, providers: ProviderRegistry): ModelRouter {
  function direct(name: string): Candidate | undefined {
    const route = config.models[name];
    if (route) return candidate(route.provider, route.model);
    const slash = name.indexOf('/');
    if (slash <= 0) return undefined;
    return candidate(name.slice(0, slash), name.slice(slash + 1));
  }

  function candidate(providerId: string, model: string): Candidate | undefined {
    const adapter = providers.get(providerId);
    const provider = config.providers[providerId];
    if (!adapter || !provider || model === '') return undefined;
    return { adapter, model, timeouts: provider.timeouts };
  }

  return {
    resolve(name) {
      const primary = direct(name);
      if (!primary) {
        throw new SluiceError('model_not_found', {
          param: 'model',
          message: `The model "${name}" does not exist on this gateway; GET /v1/models lists the models you can use.`,
        });
      }
      const fallbacks = (config.models[name]?.fallbacks ?? []).map(direct).filter((found): found is Candidate => found !== undefined);
      return [primary, ...fallbacks];
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
  };
}
