// Appending one batch of a generation's events to its Redis log: one script, so the append, the
// TTLs, the finished mark and the growth notice are one atomic step and one round trip.
import type { RedisConnections } from '../../redis/connection.js';
import { defineLuaScript, runLuaScript } from '../../redis/lua-script.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { jsonString } from '../../contract/json-string.js';
import type { GenerationInfo } from '../generation-registry.js';
import type { GenerationKeys } from './keys.js';
import { encodeEntry, type LogFormat } from './log-format.js';

/**
 * The end of an append in either format, once `length` holds the log's new event count: the
 * finished mark, both TTLs, and the growth notice to followers.
 */
const appendEnd = `
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'finished', '1') end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if length > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
redis.call(ARGV[7], ARGV[4], length)
return {1, length}
`;

/**
 * Format 1 (log-format.ts): appends one batch to a generation's log, only if the log is as long
 * as the writer believes (so a retry after a lost reply never duplicates events: the list index
 * must stay the seq), sets the TTLs, marks it finished with the last batch, and tells followers
 * the new length.
 * KEYS: meta hash, events list (one slot: both carry the generation's hash tag). ARGV: expected
 * length, finished flag, TTL ms, channel (in the same slot), info JSON ('' once written), node id,
 * PUBLISH or SPUBLISH (a Redis Cluster's sharded publish), then the batch: its events' JSON
 * joined by '\n' ('' for none). JSON text has no raw newline, so the split is exact; one argument
 * instead of one per event spares the client building and measuring hundreds of them
 * (docs/decisions/0030-redis-writes-in-the-background.md).
 * Returns {1, length} appended, {0, length} the log's length differs, {-1, 0} the keys are gone.
 */
const appendScript = defineLuaScript(`
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'info', ARGV[5], 'node', ARGV[6], 'finished', '0')
elseif redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1, 0}
end
local length = redis.call('LLEN', KEYS[2])
if length ~= tonumber(ARGV[1]) then return {0, length} end
local batch, events, from = ARGV[8], {}, 1
while from <= #batch do
  local newline = string.find(batch, '\\n', from, true) or (#batch + 1)
  events[#events + 1] = string.sub(batch, from, newline - 1)
  from = newline + 1
end
-- unpack() is bounded by the Lua stack: push in slices.
for first = 1, #events, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(events, first, math.min(first + 999, #events)))
end
length = length + #events
${appendEnd}`);

/**
 * Format 2 (log-format.ts): the same step with the batch as one list entry. The event count is the
 * meta hash's `length`, which must be what the writer believes. Writing the info marks the log
 * `log: 2`; when the meta hash is gone (first write, or the keys expired) it also starts the count
 * at 0 and drops a list left over from before, whose entries a reader could not place; when it is
 * there (a retried first write whose reply was lost) the count stays.
 * KEYS, ARGV and reply as the format-1 script's, ARGV[8] being the entry ('' for none) and ARGV[9]
 * the number of events in it.
 */
const appendCompactScript = defineLuaScript(`
if ARGV[5] ~= '' then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[1], 'length', '0')
  end
  redis.call('HSET', KEYS[1], 'info', ARGV[5], 'node', ARGV[6], 'finished', '0', 'log', '2')
elseif redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1, 0}
end
local length = tonumber(redis.call('HGET', KEYS[1], 'length') or '0')
if length ~= tonumber(ARGV[1]) then return {0, length} end
local count = tonumber(ARGV[9])
if count > 0 then
  redis.call('RPUSH', KEYS[2], ARGV[8])
  length = length + count
  redis.call('HSET', KEYS[1], 'length', length)
end
${appendEnd}`);

export interface AppendBatch {
  readonly info: GenerationInfo;
  /** The node that produces the generation. */
  readonly nodeId: string;
  /** How many events the writer believes Redis holds: the seq of the batch's first event. */
  readonly expectedLength: number;
  readonly events: readonly StreamEvent[];
  /** True with the batch that ends in the terminal event. */
  readonly finished: boolean;
  /** The TTL both keys get, in ms. */
  readonly ttlMs: number;
  /** Whether the meta hash is to be (re)written: on the first batch, and after the keys expired. */
  readonly writeInfo: boolean;
  /** The log's format, chosen at its first write (log-format.ts). */
  readonly format: LogFormat;
}

export type AppendResult =
  /** The batch is in: the log is now `length` long. */
  | { readonly outcome: 'appended'; readonly length: number }
  /** Nothing appended: the log is `length` long, not `expectedLength`. */
  | { readonly outcome: 'length-differs'; readonly length: number }
  /** Nothing appended: the keys expired; write again from seq 0, info first. */
  | { readonly outcome: 'keys-missing' };

/** Runs the append script; rejects when Redis fails or answers something else. */
export async function appendBatch(redis: RedisConnections, keys: GenerationKeys, batch: AppendBatch): Promise<AppendResult> {
  const { info } = batch;
  // The background connection: the local stream never waits for its copy (decision 0030).
  const compact = batch.format === 2;
  const reply = await runLuaScript(
    redis.background,
    compact ? appendCompactScript : appendScript,
    [keys.meta(info.id), keys.events(info.id)],
    [
      batch.expectedLength.toString(),
      batch.finished ? '1' : '0',
      batch.ttlMs.toString(),
      keys.grew(info.id),
      batch.writeInfo ? JSON.stringify(info) : '',
      batch.nodeId,
      redis.publishCommand,
      ...(compact ? [batch.events.length > 0 ? encodeEntry(batch.expectedLength, batch.events) : '', batch.events.length.toString()] : [encodeBatch(batch.events)]),
    ],
  );
  if (!Array.isArray(reply) || typeof reply[0] !== 'number' || typeof reply[1] !== 'number') throw new Error('redis: unexpected reply from the append script');
  const [status, length] = reply as [number, number];
  if (status === -1) return { outcome: 'keys-missing' };
  return status === 1 ? { outcome: 'appended', length } : { outcome: 'length-differs', length };
}

/** The events as the script takes them: each one's JSON, joined by '\n'. */
export function encodeBatch(events: readonly StreamEvent[]): string {
  return events.map(eventJson).join('\n');
}

/**
 * One event's JSON. A text delta, nearly every event of a log, is written around its text's JSON:
 * the same text as JSON.stringify of the event (its two fields, in this order), at half the cost,
 * since stringifying an object costs more than its one string (decision 0030).
 */
function eventJson(event: StreamEvent): string {
  return event.type === 'text-delta' ? `{"type":"text-delta","text":${jsonString(event.text)}}` : JSON.stringify(event);
}
