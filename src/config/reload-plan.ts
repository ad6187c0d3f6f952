// What a reload may change in a running gateway, and what only a restart can: the listener, the
// store, the cluster, where /metrics is served, the hub's and the generations' retention and tracing are fixed
// when the process starts; providers, models, limits, auth, logging and the rest apply to new
// requests at once. A plan takes the new config, keeps the fixed sections as they are, and says
// which settings changed and which wait for a restart (docs/reload.md).
import type { Config } from './config.js';

/** Sections a running gateway cannot change; a reload keeps their current values. */
const fixedAtStart = ['server', 'store', 'cluster', 'metrics', 'hub', 'generations', 'tracing'] as const satisfies readonly (keyof Config)[];

/** What a reload did, for the log and the POST /admin/reload answer. */
export interface ReloadOutcome {
  readonly changed: readonly string[];
  readonly restartRequired: readonly string[];
}

export interface ReloadPlan {
  /** The config to run on: the new one, with the fixed sections of the current one. */
  readonly config: Config;
  /** Settings that change now (dotted paths, no values: a value may be a secret). */
  readonly changed: readonly string[];
  /** Settings that differ in the file but wait for a restart. */
  readonly restartRequired: readonly string[];
}

export function planReload(current: Config, next: Config): ReloadPlan {
  const fixed = new Set<string>(fixedAtStart);
  const changed: string[] = [];
  const restartRequired: string[] = [];
  for (const path of differences(withoutFirstStartOnly(current), withoutFirstStartOnly(next), '')) {
    (fixed.has(path.split('.')[0] ?? '') ? restartRequired : changed).push(path);
  }
  const config = { ...next } as Record<string, unknown>;
  for (const section of fixedAtStart) {
    if (current[section] === undefined) delete config[section];
    else config[section] = current[section];
  }
  return { config: Object.freeze(config) as unknown as Config, changed, restartRequired };
}

/** `auth.adminKey` is read on the first start only; a different one later changes nothing. */
function withoutFirstStartOnly(config: Config): unknown {
  const auth: Record<string, unknown> = { ...config.auth };
  delete auth['adminKey'];
  return { ...config, auth };
}

/** The dotted paths at which two JSON-like values differ (arrays compare whole). */
function differences(before: unknown, after: unknown, path: string): string[] {
  if (isRecord(before) && isRecord(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    return [...keys].sort().flatMap((key) => differences(before[key], after[key], path === '' ? key : `${path}.${key}`));
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [path];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
