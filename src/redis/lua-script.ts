// Running Sluice's Lua scripts. Each call sends EVALSHA (the script's 40-character digest) rather
// than the whole source; when Redis does not hold the script (it restarted, SCRIPT FLUSH, a node's
// first call) the answer is NOSCRIPT and the same call is sent once more as EVAL, which caches it.
// One place for this, so the limits, the hub, the generation logs and the presence all do it alike.
// On a Redis Cluster the call goes to the master of the first key's slot, and every key in `keys`
// must share that slot (src/redis/keys.ts); a script reaches no key that is not in `keys`.
import { createHash } from 'node:crypto';
import type { RedisCommands } from './connection.js';

export interface LuaScript {
  readonly source: string;
  /** SHA-1 of `source` in hex: what EVALSHA names the script by. */
  readonly sha: string;
}

/** A script with its digest, computed once (at module load, where the scripts are defined). */
export function defineLuaScript(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * Runs `script` with `keys` (KEYS) and `args` (ARGV) and resolves to its raw reply, which the
 * caller checks. Rejects with Redis's error, or the connection's, when the call fails: at once
 * when the connection is down, after the command timeout when Redis stops answering.
 */
export async function runLuaScript(redis: RedisCommands, script: LuaScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
  try {
    return await redis.evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
    return await redis.eval(script.source, keys.length, ...keys, ...args);
  }
}
