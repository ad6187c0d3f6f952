// How a generation's log is laid out in Redis, and when a node may use the compact layout
// (docs/decisions/0035-the-compact-generation-log.md).
//
// Format 1, what every node has read since cluster mode began: one list entry per event, its
// JSON, the list index being its seq. Format 2, the compact one: one list entry per batch the
// producer appended, and within it one line per event, where a text delta (nearly every event)
// is only its text's JSON string and any other event its JSON object. The entry's first line is
// the seq of its first event, so a reader can tell where each batch starts without counting from
// the first one. The meta hash of a format-2 log says `log: 2` and holds the event count
// (`length`), which the list's length no longer is.
//
// A node of an earlier version reads only format 1. So a node writes format 2 only while every
// live node of the cluster has said it reads it (LogFormatGate), and a log keeps the format of
// its first write: a rolling upgrade never leaves an old node with a log it cannot read, except
// one that joins within a check interval of a node choosing format 2 (a rollback mid-upgrade).
import type { Logger } from '../../observability/logger.js';
import type { RedisConnections } from '../../redis/connection.js';
import { nodesKey } from '../../redis/node-presence.js';
import { slotKey } from '../../redis/keys.js';
import { defineLuaScript, runLuaScript } from '../../redis/lua-script.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { jsonString } from '../../contract/json-string.js';
import { SluiceError } from '../../errors/sluice-error.js';
import { parseEvent } from './wire.js';

export type LogFormat = 1 | 2;

/** The `log` field of a generation's meta hash: which format its list is in (absent: 1). */
export function formatOfMeta(meta: Readonly<Record<string, string>>): LogFormat {
  return meta['log'] === '2' ? 2 : 1;
}

/**
 * A text delta is stored as its text alone here (and written around its text in format 1's
 * eventJson, append-script.ts): a field added to it would be lost, so this stops the build until
 * both encodings keep it.
 */
const textDeltaHasOnlyItsText: Exclude<keyof Extract<StreamEvent, { type: 'text-delta' }>, 'type' | 'text'> extends never ? true : never = true;
void textDeltaHasOnlyItsText;

/**
 * One format-2 entry: `firstSeq`, then each event on a line of its own. JSON text holds no raw
 * newline (JSON.stringify escapes it), so splitting on '\n' is exact. A text delta is written as
 * its text's JSON string, a quarter of its event's JSON for a short token, and cheaper to build.
 * The lines are joined from an array, which gives one flat string: built with `+=`, the entry was
 * a tree of its pieces, one per token, which ioredis flattened when it wrote the command
 * (docs/decisions/0043-token-text-as-a-json-string.md).
 */
export function encodeEntry(firstSeq: number, events: readonly StreamEvent[]): string {
  const lines = new Array<string>(events.length + 1);
  lines[0] = firstSeq.toString();
  for (let index = 0; index < events.length; index++) {
    const event = events[index] as StreamEvent;
    lines[index + 1] = event.type === 'text-delta' ? jsonString(event.text) : JSON.stringify(event);
  }
  return lines.join('\n');
}

/** A format-2 entry read back: the seq of its first event, and its events. */
export interface DecodedEntry {
  readonly firstSeq: number;
  readonly events: StreamEvent[];
}

/** Reads one format-2 entry; throws SluiceError internal_error when it is not one. */
export function decodeEntry(raw: unknown): DecodedEntry {
  const lines = typeof raw === 'string' ? raw.split('\n') : [];
  const head = lines[0] ?? '';
  if (!/^\d{1,15}$/.test(head)) throw new SluiceError('internal_error', { message: 'A generation log in Redis holds an entry that is not a batch of stream events.' });
  const events: StreamEvent[] = [];
  for (let index = 1; index < lines.length; index++) {
    const line = lines[index] ?? '';
    events.push(line.startsWith('"') ? { type: 'text-delta', text: parseText(line) } : parseEvent(line));
  }
  return { firstSeq: Number(head), events };
}

function parseText(line: string): string {
  const text: unknown = JSON.parse(line);
  if (typeof text !== 'string') throw new SluiceError('internal_error', { message: 'A generation log in Redis holds a text that is not a string.' });
  return text;
}

/**
 * Declares that this node reads format 2 (until `ttl` ms from now, by Redis's clock), drops the
 * declarations that ran out, and answers '' when every live node (the presence's set) has one,
 * or the id of a live node that has none.
 * KEYS: the presence's live set, the declarations hash (field: node id, value: until when), one
 * slot (`{nodes}`). ARGV: node id, TTL in ms.
 */
const declareScript = defineLuaScript(`
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], nowMs + ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
local declared = redis.call('HGETALL', KEYS[2])
local untilOf = {}
for index = 1, #declared, 2 do
  local untilMs = tonumber(declared[index + 1])
  if untilMs < nowMs then redis.call('HDEL', KEYS[2], declared[index]) else untilOf[declared[index]] = untilMs end
end
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], nowMs, '+inf')) do
  if untilOf[node] == nil then return node end
end
return ''
`);

/** The declarations hash of the nodes that read format 2, in the presence's slot. */
export function compactReadersKey(keyPrefix: string): string {
  return slotKey(keyPrefix, 'nodes', ':log-format-2-readers');
}

export interface LogFormatGateOptions {
  readonly redis: RedisConnections;
  readonly nodeId: string;
  /** How long a declaration lasts (the presence's TTL), in ms. */
  readonly ttlMs: number;
  /** How often this node declares itself and checks the others (below ttlMs), in ms. */
  readonly intervalMs: number;
  readonly logger: Logger;
}

/**
 * Which format this node writes new logs in: 1 until a check finds that every live node reads
 * format 2, then 2 while that holds. Checks at once and every `intervalMs`; a check that fails
 * (Redis away) keeps the last answer, since no log is written while Redis is away anyway. Each
 * change is logged, naming the node that holds the cluster to format 1, so an operator can follow
 * a rolling upgrade.
 */
export class LogFormatGate {
  readonly #options: LogFormatGateOptions;
  readonly #timer: NodeJS.Timeout;
  #format: LogFormat = 1;
  /** The live node without a declaration at the last check ('' when there was none). */
  #holdout: string | undefined;

  constructor(options: LogFormatGateOptions) {
    this.#options = options;
    this.#timer = setInterval(() => void this.check(), options.intervalMs);
    this.#timer.unref();
    void this.check();
  }

  /** The format a log started now is written in. */
  get format(): LogFormat {
    return this.#format;
  }

  /** Declares this node and checks the others now; never rejects. */
  async check(): Promise<void> {
    const { redis, nodeId, ttlMs, logger } = this.#options;
    let holdout: string;
    try {
      const answer = await runLuaScript(redis.command, declareScript, [nodesKey(redis.keyPrefix), compactReadersKey(redis.keyPrefix)], [nodeId, ttlMs.toString()]);
      if (typeof answer !== 'string') throw new Error('unexpected reply from the log format script');
      holdout = answer;
    } catch (error) {
      logger.debug({ err: error }, 'redis generation registry: checking which log format every node reads failed');
      return;
    }
    this.#format = holdout === '' ? 2 : 1;
    if (holdout === this.#holdout) return;
    // Not on the first check of a node in a cluster that reads format 2 throughout: nothing changed there.
    if (holdout === '' && this.#holdout !== undefined) logger.info({ nodeId }, 'generation logs: every live node reads the compact layout (decision 0035); logs started from now on use it');
    else if (holdout !== '') logger.info({ nodeId, holdout }, `generation logs: node ${holdout} does not read the compact layout (an earlier version); logs started from now on use one entry per event`);
    this.#holdout = holdout;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
