// GET /admin/providers: each configured provider with the upstream targets it serves (each pool
// deployment on it, `provider/model`, with the aliases whose pools hold it), each target's health as the
// health store knows it (state, cooldown, failures, in flight), and how the provider has answered
// over the last hour according to the usage rows (requests, errors, latency, the last error).
import type { Config } from '../../config/config.js';
import type { HealthStore } from '../../routing/health.js';
import type { UsageStore } from '../../store/store.js';
import { sendJson } from '../respond.js';
import type { RouteHandler } from '../router.js';

const hourMs = 3_600_000;

export interface AdminProvidersDependencies {
  /** Read per request: a reload may add or remove providers. */
  readonly config: () => Pick<Config, 'providers' | 'models'>;
  readonly healthStore: Pick<HealthStore, 'read'>;
  readonly usage: Pick<UsageStore, 'providerStats'>;
  readonly now: () => number;
}

const iso = (ms: number | undefined | null): string | null => (ms === undefined || ms === null ? null : new Date(ms).toISOString());

export function createAdminProvidersRoute(dependencies: AdminProvidersDependencies): RouteHandler {
  return async function adminProviders(_context, _request, response) {
    const { providers, models } = dependencies.config();
    const now = dependencies.now();
    const targets = new Map<string, { id: string; model: string; aliases: string[] }[]>();
    // Every deployment of each alias's pool (docs/pools.md), not only the first.
    for (const [alias, route] of Object.entries(models)) {
      for (const deployment of route.deployments) {
        const list = targets.get(deployment.provider) ?? [];
        const id = `${deployment.provider}/${deployment.model}`;
        const existing = list.find((target) => target.id === id);
        if (existing) {
          if (!existing.aliases.includes(alias)) existing.aliases.push(alias);
        } else list.push({ id, model: deployment.model, aliases: [alias] });
        targets.set(deployment.provider, list);
      }
    }
    const allIds = [...targets.values()].flat().map((target) => target.id);
    const [health, stats] = await Promise.all([dependencies.healthStore.read(allIds, now), dependencies.usage.providerStats({ from: now - hourMs, to: now + 1 })]);
    const statsOf = new Map(stats.map((row) => [row.provider, row]));
    sendJson(response, 200, {
      object: 'list',
      windowMs: hourMs,
      data: Object.values(providers).map((provider) => {
        const recent = statsOf.get(provider.id);
        const providerTargets = (targets.get(provider.id) ?? []).map((target) => {
          const state = health.get(target.id);
          return {
            id: target.id,
            model: target.model,
            aliases: target.aliases,
            state: state?.state ?? 'healthy',
            coolingUntil: iso(state?.coolingUntil),
            consecutiveFailures: state?.consecutiveFailures ?? 0,
            lastErrorCode: state?.lastErrorCode ?? null,
            lastFailureAt: iso(state?.lastFailureAt),
            inFlight: state?.inFlight ?? 0,
          };
        });
        const worst = providerTargets.some((target) => target.state === 'disabled' || target.state === 'cooling') ? 'degraded' : recent && recent.errors > 0 && recent.errors === recent.requests ? 'failing' : 'healthy';
        return {
          id: provider.id,
          type: provider.type,
          status: worst,
          targets: providerTargets,
          lastHour: {
            requests: recent?.requests ?? 0,
            errors: recent?.errors ?? 0,
            errorRate: recent && recent.requests > 0 ? recent.errors / recent.requests : 0,
            meanTimeToFirstTokenMs: recent?.meanTimeToFirstTokenMs ?? null,
            meanDurationMs: recent?.meanDurationMs ?? null,
            lastErrorAt: iso(recent?.lastErrorAt),
            lastErrorCode: recent?.lastErrorCode ?? null,
          },
        };
      }),
    });
  };
}
