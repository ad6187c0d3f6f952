// Which cooldown policy the health stores of this node use: `router.cooldown` (docs/pools.md),
// read in one place so that app.ts and cluster mode cannot disagree. The stores are built once per
// process, so a reload does not change it (docs/reload.md lists it as restart-required).
import type { Config } from '../config/config.js';
import type { CooldownPolicy } from './health.js';

/** The cooldown policy `config` asks for. */
export function cooldownPolicyOf(config: Config): CooldownPolicy {
  return config.router.cooldown;
}
