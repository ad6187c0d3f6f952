// Running Sluice's Lua scripts. Each call sends EVALSHA (the script's 40-character digest) rather
// than the whole source; when Redis does not hold the script (it restarted, SCRIPT FLUSH, a node's
// first call) the answer is NOSCRIPT and the same call is sent once more as EVAL, which caches it.
// One place for this, so the limits, the hub, the generation logs and the presence all do it alike.
// A connection loads every defined script as it becomes ready (loadLuaScripts), because the EVAL
// retry breaks the order of calls nobody waits for: see loadLuaScripts.
// On a Redis Cluster the call goes to the master of the first key's slot, and every key in `keys`
// must share that slot (src/redis/keys.ts); a script reaches no key that is not in `keys`.
import { createHash } from 'node:crypto';
// ioredis's own types, not connection.ts's RedisCommands: connection.ts imports this module.
import type { Cluster, Redis } from 'ioredis';

export interface LuaScript {
  readonly source: string;
  /** SHA-1 of `source` in hex: what EVALSHA names the script by. */
  readonly sha: string;
}

/** Every script defined so far, in definition order: what loadLuaScripts sends. */
const definedScripts: LuaScript[] = [];

/**
 * A script with its digest, computed once. Call it at module load, where the scripts are defined:
 * each one is kept for loadLuaScripts, so the list only grows.
 */
export function defineLuaScript(source: string): LuaScript {
  const script = { source, sha: createHash('sha1').update(source).digest('hex') };
  definedScripts.push(script);
  return script;
}

/**
 * Sends SCRIPT LOAD for every script defined so far on `connection`, without waiting for the
 * answers. The connections call it as one becomes ready (connection.ts), before anything else is
 * sent on it, so a script call sent later finds its script. Without it, a call answered NOSCRIPT
 * is sent again as EVAL only after that answer, behind whatever was sent in between: a call
 * nobody waits for (the in-flight count's acquire) would be overtaken by the read sent after it,
 * on a fresh Redis or after a restart. A failed load only means the EVAL retry runs as before.
 */
export function loadLuaScripts(connection: Redis): void {
  for (const script of definedScripts) connection.script('LOAD', script.source).catch(() => undefined);
}

/**
 * Runs `script` with `keys` (KEYS) and `args` (ARGV) and resolves to its raw reply, which the
 * caller checks. Rejects with Redis's error, or the connection's, when the call fails: at once
 * when the connection is down, after the command timeout when Redis stops answering.
 */
export async function runLuaScript(redis: Redis | Cluster, script: LuaScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
  try {
    return await redis.evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
    return await redis.eval(script.source, keys.length, ...keys, ...args);
  }
}
