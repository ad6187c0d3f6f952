// Replay in a cluster: the user's log and the broadcast log are read from Redis (members name the
// messages' keys, scores are their push ids), their messages fetched with MGET (one slot, `{hub}`), and merged as the memory hub merges its own (mergeReplay), with the age cut
// by the hub's clock (docs/decisions/0009-redis-hub.md, "Push: one Lua script").
import type { RedisCommands } from '../../redis/connection.js';
import type { HubRetention, PushMessage } from '../hub.js';
import { mergeReplay, type RetainedPush } from '../push-log.js';
import type { HubKeys } from './keys.js';
import { parseJson, pushMessageSchema } from './wire.js';

export interface RedisReplayOptions {
  readonly command: RedisCommands;
  readonly keys: HubKeys;
  readonly retention: HubRetention;
  readonly now: () => number;
}

/**
 * What `userId` was sent after push id `after` and Redis still retains, oldest first. Rejects
 * with Redis's error when a command fails (the hub turns it into store_unavailable).
 */
export async function replayFromRedis(options: RedisReplayOptions, userId: string, after: number): Promise<PushMessage[]> {
  const { command, keys, retention, now } = options;
  const answers = (await command.pipeline().get(keys.sequence).zrange(keys.userLog(userId), 0, -1, 'WITHSCORES').zrange(keys.broadcast, 0, -1, 'WITHSCORES').exec()) ?? [];
  for (const [error] of answers) if (error) throw error;
  const sequence = Number(answers[0]?.[1] ?? 0);
  // [member, score, member, score, …] → message key suffix → push id.
  const entries = (index: number): Map<string, string> => {
    const value = answers[index]?.[1];
    const found = new Map<string, string>();
    if (!Array.isArray(value)) return found;
    for (let at = 0; at + 1 < value.length; at += 2) found.set(String(value[at]), String(value[at + 1]));
    return found;
  };
  const own = entries(1);
  const broadcasts = entries(2);
  const wanted = [...new Set([...own.keys(), ...broadcasts.keys()])];
  const stored = wanted.length === 0 ? [] : await command.mget(...wanted.map(keys.message));
  const at = now();
  const messages = new Map<string, PushMessage>();
  stored.forEach((text, index) => {
    if (text === null) return; // aged out in Redis
    const parsed = pushMessageSchema.safeParse(parseJson(text));
    // The same age rule as the memory log, by the hub's clock (Redis's TTL is the backstop).
    if (parsed.success && at - parsed.data.pushedAt <= retention.ageMs) messages.set(wanted[index] ?? '', parsed.data);
  });
  const retained = (log: ReadonlyMap<string, string>): RetainedPush[] =>
    [...log].flatMap(([member, id]) => {
      const message = messages.get(member);
      return message ? [{ seq: Number(id), message }] : [];
    });
  // Ahead of the sequence: the client saw the ids of a Redis that has since lost its data.
  return mergeReplay(retained(own), retained(broadcasts), after > sequence ? -1 : after, retention.count);
}
