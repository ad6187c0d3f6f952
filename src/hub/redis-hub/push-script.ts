// A push in one Lua script: the id, the retained copies and the publish are one atomic step, so
// every node's subscriber receives pushes in id order and no id is ever published without being
// retained (docs/decisions/0009-redis-hub.md, "Push: one Lua script").
import type { RedisConnections } from '../../redis/connection.js';
import { defineLuaScript, runLuaScript } from '../../redis/lua-script.js';
import type { HubRetention, PushTarget } from '../hub.js';
import type { HubKeys } from './keys.js';
import { pushEnvelopeHead, pushMessageTail } from './wire.js';

// KEYS[1] the sequence, KEYS[2] the broadcast log, KEYS[3] the message, KEYS[4..] the users' logs
// (all in the `{hub}` slot). ARGV: 1 now (ms), 2 retention count, 3 retention age (ms), 4 the
// message's JSON after its id, 5 the envelope's JSON up to the message, 6 the channel (same slot),
// 7 PUBLISH or SPUBLISH, 8 '1' for a broadcast, 9 the logs' member for this message (the message
// key's suffix, the push request's id).
// The message is stored once (with the retention age as its TTL) and the logs hold its key's
// suffix scored by its id, so a push to 1000 users is not stored 1000 times; each log is cut to the
// count and expires when its newest message does, so idle users vanish. Every key is passed in
// KEYS, none is built here: on a Redis Cluster a script may only touch the keys it declares, all
// in one slot (docs/decisions/0019-redis-cluster.md).
const pushScript = defineLuaScript(`
local id = redis.call('INCR', KEYS[1])
if id == 1 then
  -- A new (or lost) sequence starts at the clock, so ids stay above those given before a loss.
  id = math.max(1, tonumber(ARGV[1]))
  redis.call('SET', KEYS[1], string.format('%d', id))
end
local idText = string.format('%d', id)
local message = '{"id":"' .. idText .. '",' .. ARGV[4]
local count = tonumber(ARGV[2])
local ageMs = tonumber(ARGV[3])
if count > 0 and ageMs > 0 then
  redis.call('SET', KEYS[3], message, 'PX', ageMs)
  local first, last = 4, #KEYS
  if ARGV[8] == '1' then first, last = 2, 2 end
  for index = first, last do
    redis.call('ZADD', KEYS[index], idText, ARGV[9])
    redis.call('ZREMRANGEBYRANK', KEYS[index], 0, -(count + 1))
    redis.call('PEXPIRE', KEYS[index], ageMs)
  end
end
local receivers = redis.call(ARGV[7], ARGV[6], ARGV[5] .. message .. '}')
return { idText, receivers }
`);

export interface ScriptedPush {
  /** The node the push came through (it gathers the replies). */
  readonly origin: string;
  /** The id the replies name. */
  readonly request: string;
  /** Deduplicated users, or everyone. */
  readonly target: PushTarget;
  readonly event: string;
  /** The data, serialised once. */
  readonly json: string;
  readonly pushedAt: number;
  readonly retention: HubRetention;
}

/** Takes the next id, retains and publishes the push; resolves to the id and how many subscribers got it. */
export async function runPushScript(redis: RedisConnections, keys: HubKeys, push: ScriptedPush): Promise<{ id: string; receivers: number }> {
  const users = 'all' in push.target ? [] : push.target.users;
  const answer = await runLuaScript(
    redis.command,
    pushScript,
    [keys.sequence, keys.broadcast, keys.message(push.request), ...users.map(keys.userLog)],
    [
      push.pushedAt.toString(),
      push.retention.count.toString(),
      push.retention.ageMs.toString(),
      pushMessageTail(push.event, push.json, push.pushedAt),
      pushEnvelopeHead(push.origin, push.request, push.target),
      keys.eventsChannel,
      redis.publishCommand,
      'all' in push.target ? '1' : '0',
      push.request,
    ],
  );
  if (!Array.isArray(answer)) throw new Error('hub: unexpected reply to the push script.');
  return { id: String(answer[0]), receivers: Number(answer[1]) };
}
