// Which cooldown policy the health stores of this node use. The setting is `router.cooldown`,
// which the pools work adds to the config; until that is merged, the policy is its proposed
// default (5 s doubling to 5 minutes, a probe holding others off for 30 s), written here once so
// that app.ts and cluster mode cannot disagree. On merge this returns `config.router.cooldown`.
import type { Config } from '../config/config.js';
import type { CooldownPolicy } from './health.js';

const proposedDefault: CooldownPolicy = Object.freeze({ initialMs: 5000, maxMs: 300_000, probeTimeoutMs: 30_000 });

/** The cooldown policy `config` asks for. */
export function cooldownPolicyOf(_config: Config): CooldownPolicy {
  return proposedDefault;
}
