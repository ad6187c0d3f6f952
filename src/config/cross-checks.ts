// References between settings, which no schema of one setting can check: a model route, a pool
// deployment or a fallback naming a provider or alias that is not defined, and a defaultModel
// naming nothing. They read the document loosely, so they run in the same pass as the schema and
// a file with both kinds of mistakes gets every problem at once, not one kind per run.
import type { ConfigIssue } from './config-issue.js';
import { zeroConfig } from './defaults.js';
import { closestKeys, orList } from './key-suggestions.js';
import { isRecord } from './schema-tree.js';

/** Problems with what the providers, models and defaultModel settings name; [] where a setting is not yet readable. */
export function crossCheckIssues(document: unknown): ConfigIssue[] {
  if (!isRecord(document)) return [];
  const providers = document['providers'] ?? zeroConfig.providers;
  // Without a readable providers mapping nothing can be checked against it (the schema says why).
  if (!isRecord(providers)) return [];
  const providerIds = Object.keys(providers);
  // A file that configures no providers gets the whole demo gateway, its model alias included (load.ts).
  const models = document['models'] ?? (document['providers'] === undefined ? zeroConfig.models : {});
  const aliases = isRecord(models) ? Object.keys(models) : [];
  const issues: ConfigIssue[] = [];

  const checkProvider = (path: string, provider: unknown): void => {
    if (typeof provider !== 'string' || provider === '' || providerIds.includes(provider)) return;
    const close = closestKeys(provider, providerIds);
    const advice = close.length > 0 ? `did you mean ${orList(close)}?` : providerIds.length > 0 ? `define it under providers or use one of: ${providerIds.join(', ')}` : 'define it under providers';
    issues.push({ path, message: `no provider "${provider}"; ${advice}` });
  };
  const checkModelName = (path: string, name: unknown): void => {
    if (typeof name !== 'string' || name === '' || aliases.includes(name)) return;
    const slash = name.indexOf('/');
    if (slash > 0 && providerIds.includes(name.slice(0, slash))) return;
    const close = closestKeys(name, aliases);
    issues.push({ path, message: `"${name}" is neither a model alias nor provider/model with a configured provider${close.length > 0 ? `; did you mean ${orList(close)}?` : ''}` });
  };

  if (isRecord(models)) {
    for (const [alias, route] of Object.entries(models)) {
      if (!isRecord(route)) continue;
      checkProvider(`models.${alias}.provider`, route['provider']);
      const deployments = route['deployments'];
      if (Array.isArray(deployments)) {
        deployments.forEach((deployment: unknown, index) => {
          if (isRecord(deployment)) checkProvider(`models.${alias}.deployments.${index.toString()}.provider`, deployment['provider']);
        });
      }
      const fallbacks = route['fallbacks'];
      if (Array.isArray(fallbacks)) fallbacks.forEach((fallback: unknown, index) => checkModelName(`models.${alias}.fallbacks.${index.toString()}`, fallback));
    }
  }
  checkModelName('defaultModel', document['defaultModel']);
  return issues;
}
