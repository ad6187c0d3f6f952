// A push in one Lua script: the id, the retained copies and the publish are one atomic step, so
// every node's subscriber receives pushes in id order and no id is ever published without being
// retained (docs/decisions/0009-redis-hub.md, "Push: one Lua script").
import type { Redis } from 'ioredis';
import { defineLuaScript, runLuaScript } from '../../redis/lua-script.js';
import type { HubRetention, PushTarget } from '../hub.js';
import type { HubKeys } from './keys.js';
import { pushEnvelopeHead, pushMessageTail } from './wire.js';

// KEYS[1] the sequence, KEYS[2] the broadcast log. ARGV: 1 key prefix of messages and user logs,
// 2 now (ms), 3 retention count, 4 retention age (ms), 5 the message's JSON after its id,
// 6 the envelope's JSON up to the message, 7 the channel, 8 '1' for a broadcast, 9.. user ids.
// The message is stored once (with the retention age as its TTL) and the logs hold its id, so a
// push to 1000 users is not stored 1000 times; each log is cut to the count and expires when
// its newest message does, so idle users vanish. Keys built from ARGV are fine on one Redis (not
// on Redis Cluster, which Sluice does not support).
const pushScript = defineLuaScript(`
local id = redis.call('INCR', KEYS[1])
if id == 1 then
  -- A new (or lost) sequence starts at the clock, so ids stay above those given before a loss.
  id = math.max(1, tonumber(ARGV[2]))
  redis.call('SET', KEYS[1], string.format('%d', id))
end
local idText = string.format('%d', id)
local message = '{"id":"' .. idText .. '",' .. ARGV[5]
local count = tonumber(ARGV[3])
local ageMs = tonumber(ARGV[4])
if count > 0 and ageMs > 0 then
  redis.call('SET', ARGV[1] .. 'message:' .. idText, message, 'PX', ageMs)
  local logs = {}
  if ARGV[8] == '1' then
    logs[1] = KEYS[2]
  else
    for index = 9, #ARGV do logs[#logs + 1] = ARGV[1] .. 'user:' .. ARGV[index] end
  end
  for _, log in ipairs(logs) do
    redis.call('ZADD', log, idText, idText)
    redis.call('ZREMRANGEBYRANK', log, 0, -(count + 1))
    redis.call('PEXPIRE', log, ageMs)
  end
end
local receivers = redis.call('PUBLISH', ARGV[7], ARGV[6] .. message .. '}')
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
export async function runPushScript(redis: Redis, keys: HubKeys, push: ScriptedPush): Promise<{ id: string; receivers: number }> {
  const users = 'all' in push.target ? [] : push.target.users;
  const answer = await runLuaScript(
    redis,
    pushScript,
    [keys.sequence, keys.broadcast],
    [
      keys.logs,
      push.pushedAt.toString(),
      push.retention.count.toString(),
      push.retention.ageMs.toString(),
      pushMessageTail(push.event, push.json, push.pushedAt),
      pushEnvelopeHead(push.origin, push.request, push.target),
      keys.eventsChannel,
      'all' in push.target ? '1' : '0',
      ...users,
    ],
  );
  if (!Array.isArray(answer)) throw new Error('hub: unexpected reply to the push script.');
  return { id: String(answer[0]), receivers: Number(answer[1]) };
}
