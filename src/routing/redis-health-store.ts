// Target health in Redis: the HealthStore of a cluster, so that a cooldown, a disabled key, a
// half-open probe and the in-flight counts one node sees hold for every node. Each method is one
// Lua script (or, for a release and a reset, one command), driven by the caller's `now` rather
// than Redis TIME, as the limit state is (decision 0007): the arithmetic is memory-health-store.ts
// and `cooldownMs` repeated in Lua, and both stores pass the same contract suite.
//
// Keys, all `<keyPrefix>{health}:…` (one Redis Cluster slot, so a read of many targets is one
// script), with the target id URI-encoded so a model name holding `:` cannot run into the suffix:
// - `target:<id>`: a hash {failures, coolingUntil, disabled, lastErrorCode, lastFailureAt,
//   probeUntil}. Absent means healthy: a success deletes it. A cooling or half-open target's hash
//   expires `maxMs` after its cooldown (or its claimed probe) ends, so a target nobody tried again
//   is forgotten rather than kept half-open forever; a disabled key's hash never expires (reset).
// - `in-flight:<id>`: a sorted set of lease ids scored by their deadline (now + inFlightLeaseMs),
//   so a node that dies between acquire and release stops counting when its leases run out.
import { randomUUID } from 'node:crypto';
import { flat } from '../contract/flat-string.js';
import type { RedisConnections } from '../redis/connection.js';
import { defineLuaScript, runLuaScript, type LuaScript } from '../redis/lua-script.js';
import { SluiceError } from '../errors/sluice-error.js';
import { isErrorCode } from '../errors/table.js';
import type { CooldownPolicy, Failure, HealthStore, ReadAndAcquired, TargetHealth } from './health.js';

export interface RedisHealthStoreOptions {
  /**
   * How long an in-flight count is held at most, in ms of the clock passed to the methods: a node
   * that died between acquire and release inflates the count for this long, no longer. Default
   * 600 000 (10 minutes), longer than any answer the default total timeout allows. Not renewed
   * while the request runs: a request that outlives it stops counting, which only makes
   * least-busy balancing slightly optimistic. A positive whole number.
   */
  readonly inFlightLeaseMs?: number;
  /**
   * How long a pool of one (`readAndAcquire`) may go on the health this node last read for the
   * same ids, in ms of the clock passed to the methods, while every one of them was healthy and
   * this node has recorded nothing since: its request then waits for no Redis read before its
   * upstream call, and its in-flight count is sent in the background (decision 0033). A failure
   * another node records reaches this node's pools of one that much later (config
   * `cluster.recentHealthMs`). Default 1000; 0 reads every time. A whole number ≥ 0.
   */
  readonly recentHealthMs?: number;
}

const defaultInFlightLeaseMs = 600_000;
const defaultRecentHealthMs = 1000;
/** Past this many pools' reads kept, the next one starts over (a config lists far fewer). */
const maxRecentReads = 1024;

/** Shared by the scripts: number formatting and when a target's hash may be forgotten. */
const luaPrelude = `
-- %.17g round-trips a double exactly; Lua's own tostring keeps only 14 digits.
local function fmt(x) return string.format('%.17g', x) end

-- The hash lives until maxMs after the later of its cooldown and its claimed probe; a disabled
-- target's lives until reset. TTLs are real time, measured from the caller's now.
local function expire(key, now, forgetMs)
  local stored = redis.call('HMGET', key, 'disabled', 'coolingUntil', 'probeUntil')
  if stored[1] == '1' then
    redis.call('PERSIST', key)
    return
  end
  local untilMs = math.max(now, tonumber(stored[2]) or now, tonumber(stored[3]) or now)
  redis.call('PEXPIRE', key, math.max(1, math.ceil(untilMs - now + forgetMs)))
end

-- What read answers per target: the hash's fields and the leases still running at now.
local function snapshot(key, inFlightKey, now)
  local stored = redis.call('HMGET', key, 'failures', 'coolingUntil', 'disabled', 'lastErrorCode', 'lastFailureAt')
  local answer = {}
  for i = 1, 5 do answer[i] = stored[i] or '' end
  -- A lease whose deadline has come belongs to a node that died before releasing it.
  answer[6] = redis.call('ZCOUNT', inFlightKey, '(' .. fmt(now), '+inf')
  return answer
end
`;

/** KEYS: target and in-flight key of each id. ARGV: now. Returns six entries per id. */
const readScript = `${luaPrelude}
local now = tonumber(ARGV[1])
local answer = {}
for i = 1, #KEYS, 2 do
  for _, value in ipairs(snapshot(KEYS[i], KEYS[i + 1], now)) do answer[#answer + 1] = value end
end
return answer
`;

/** KEYS: the target. ARGV: now, probeTimeoutMs, forgetMs. Returns 1 when this caller may go. */
const claimProbeScript = `${luaPrelude}
local now = tonumber(ARGV[1])
local stored = redis.call('HMGET', KEYS[1], 'failures', 'coolingUntil', 'disabled', 'probeUntil')
if stored[3] == '1' then return 0 end
local coolingUntil = tonumber(stored[2])
if coolingUntil ~= nil and coolingUntil > now then return 0 end
-- Healthy (or never seen): no probe needed, everyone may go.
if (tonumber(stored[1]) or 0) == 0 then return 1 end
local probeUntil = tonumber(stored[4])
if probeUntil ~= nil and probeUntil > now then return 0 end
redis.call('HSET', KEYS[1], 'probeUntil', fmt(now + tonumber(ARGV[2])))
expire(KEYS[1], now, tonumber(ARGV[3]))
return 1
`;

/** KEYS: the target. A disabled key stays disabled; anything else is healthy, which is no key. */
const recordSuccessScript = `
if redis.call('HGET', KEYS[1], 'disabled') ~= '1' then redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * KEYS: target, in-flight. ARGV: now, error code, retryAfterMs ('' for none), disable ('1' or
 * '0'), initialMs, maxMs. Returns the snapshot after the failure.
 */
const recordFailureScript = `${luaPrelude}
local now = tonumber(ARGV[1])
local retryAfterMs = tonumber(ARGV[3])
local initialMs, maxMs = tonumber(ARGV[5]), tonumber(ARGV[6])
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'lastErrorCode', ARGV[2], 'lastFailureAt', fmt(now))
redis.call('HDEL', KEYS[1], 'probeUntil')
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'disabled', '1')
else
  -- health.ts cooldownMs, the same steps.
  local cooldown = initialMs * 2 ^ math.max(0, math.min(failures - 1, 30))
  if retryAfterMs ~= nil and retryAfterMs > 0 then cooldown = retryAfterMs end
  redis.call('HSET', KEYS[1], 'coolingUntil', fmt(now + math.min(maxMs, cooldown)))
end
expire(KEYS[1], now, maxMs)
return snapshot(KEYS[1], KEYS[2], now)
`;

/** KEYS: in-flight. ARGV: now, lease id, lease ms. */
const acquireScript = `
local now, leaseMs = tonumber(ARGV[1]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], string.format('%.17g', now + leaseMs), ARGV[2])
-- The set outlives its newest lease, and no longer (real time; the scores are the caller's).
if redis.call('PTTL', KEYS[1]) < leaseMs then redis.call('PEXPIRE', KEYS[1], leaseMs) end
return 0
`;

/**
 * KEYS: target and in-flight key of each id, then the in-flight key to count on. ARGV: now, lease
 * id, lease ms. The read's answer (six entries per id), taken before the lease is added.
 */
const readAndAcquireScript = `${luaPrelude}
local now, leaseMs = tonumber(ARGV[1]), tonumber(ARGV[3])
local answer = {}
for i = 1, #KEYS - 1, 2 do
  for _, value in ipairs(snapshot(KEYS[i], KEYS[i + 1], now)) do answer[#answer + 1] = value end
end
local inFlight = KEYS[#KEYS]
redis.call('ZREMRANGEBYSCORE', inFlight, '-inf', ARGV[1])
redis.call('ZADD', inFlight, string.format('%.17g', now + leaseMs), ARGV[2])
if redis.call('PTTL', inFlight) < leaseMs then redis.call('PEXPIRE', inFlight, leaseMs) end
return answer
`;

const scripts = {
  read: defineLuaScript(readScript),
  claimProbe: defineLuaScript(claimProbeScript),
  recordSuccess: defineLuaScript(recordSuccessScript),
  recordFailure: defineLuaScript(recordFailureScript),
  acquire: defineLuaScript(acquireScript),
  readAndAcquire: defineLuaScript(readAndAcquireScript),
};

const snapshotLength = 6;

/** A stored number, or undefined for an absent field. */
function storedNumber(value: unknown, field: string): number | undefined {
  if (value === null || value === '' || value === undefined) return undefined;
  const parsed = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(parsed)) throw new Error(`The health script answered ${JSON.stringify(value)} for ${field}.`);
  return parsed;
}

/** One target's snapshot (the six values `snapshot` returns) as the memory store would show it. */
function healthOf(values: readonly unknown[], now: number): TargetHealth {
  const [failures, coolingUntil, disabled, lastErrorCode, lastFailureAt, inFlight] = values;
  const consecutiveFailures = storedNumber(failures, 'failures') ?? 0;
  const until = storedNumber(coolingUntil, 'coolingUntil');
  const failedAt = storedNumber(lastFailureAt, 'lastFailureAt');
  const base = {
    consecutiveFailures,
    inFlight: storedNumber(inFlight, 'inFlight') ?? 0,
    // A code written by another version of Sluice that this one does not know is left out.
    ...(typeof lastErrorCode === 'string' && isErrorCode(lastErrorCode) ? { lastErrorCode } : {}),
    ...(failedAt !== undefined ? { lastFailureAt: failedAt } : {}),
  };
  if (disabled === '1') return { ...base, state: 'disabled' };
  if (until !== undefined && until > now) return { ...base, state: 'cooling', coolingUntil: until };
  if (consecutiveFailures > 0) return { ...base, state: 'half-open' };
  return { ...base, state: 'healthy' };
}

function snapshotsOf(reply: unknown, count: number): unknown[][] {
  if (!Array.isArray(reply) || reply.length !== count * snapshotLength) throw new Error(`The health script answered ${JSON.stringify(reply)} for ${String(count)} targets.`);
  const values = reply as unknown[];
  return Array.from({ length: count }, (_, index) => values.slice(index * snapshotLength, (index + 1) * snapshotLength));
}

/** `action` the first time the returned function is called, nothing after. */
function once(action: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    action();
  };
}

/** A number as a script argument: String() round-trips a double, and Lua's tonumber reads it back. */
function numberArgument(value: number): string {
  return String(value);
}

/**
 * A HealthStore in Redis, shared by every node connected to it, with the same answers as the
 * memory store. Every key is under `redis.keyPrefix` plus the hash tag `{health}`, so the prefix
 * must not contain `{`. A method fails with SluiceError `store_unavailable` (503, retryable) when
 * Redis does not answer: at once when the connection is down, after the command timeout
 * otherwise; wrap the store in createFailoverHealthStore so that the request path never sees it.
 * `acquire` does not wait for Redis's answer, and its release is sent in the background: if Redis
 * is down then, the lease runs out by itself.
 */
export function createRedisHealthStore(redis: RedisConnections, policy: CooldownPolicy, options: RedisHealthStoreOptions = {}): HealthStore {
  const leaseMs = options.inFlightLeaseMs ?? defaultInFlightLeaseMs;
  if (!(Number.isInteger(leaseMs) && leaseMs > 0)) throw new RangeError(`inFlightLeaseMs must be a positive whole number of ms, got ${String(leaseMs)}.`);
  const recentMs = options.recentHealthMs ?? defaultRecentHealthMs;
  if (!(Number.isInteger(recentMs) && recentMs >= 0)) throw new RangeError(`recentHealthMs must be a whole number of ms ≥ 0, got ${String(recentMs)}.`);
  /** A pool of one's last read (by its ids, joined), kept only while every target in it was healthy. */
  const recentReads = new Map<string, { readonly at: number; readonly health: ReadonlyMap<string, TargetHealth> }>();
  /** Counts this node's health writes, so a read answered after one of them is not kept. */
  let healthWrites = 0;
  const targetKey = (id: string): string => `${redis.keyPrefix}{health}:target:${encodeURIComponent(id)}`;
  const inFlightKey = (id: string): string => `${redis.keyPrefix}{health}:in-flight:${encodeURIComponent(id)}`;

  function unavailable(error: unknown): SluiceError {
    return new SluiceError('store_unavailable', {
      message: `Redis, which holds the upstream health, did not answer (${error instanceof Error ? error.message : String(error)}).`,
      cause: error,
    });
  }

  /** One script call; any failure of Redis is store_unavailable. */
  async function run(script: LuaScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    try {
      return await runLuaScript(redis.command, script, keys, args);
    } catch (error) {
      throw unavailable(error);
    }
  }

  /** The keys a snapshot of each id reads: its target hash and its in-flight set. */
  function snapshotKeys(ids: readonly string[]): string[] {
    return ids.flatMap((id) => [targetKey(id), inFlightKey(id)]);
  }

  function healthById(ids: readonly string[], reply: unknown, now: number): Map<string, TargetHealth> {
    const snapshots = snapshotsOf(reply, ids.length);
    return new Map(ids.map((id, index) => [id, healthOf(snapshots[index] ?? [], now)]));
  }

  /**
   * Counts one request in flight without waiting for Redis, on `connection`; the returned function
   * ends the count, after the acquire's answer so that the release cannot overtake it.
   */
  function acquireUnawaited(connection: RedisConnections['command'], id: string, now: number): () => void {
    const lease = flat(randomUUID());
    const key = inFlightKey(id);
    const acquired = runLuaScript(connection, scripts.acquire, [key], [numberArgument(now), lease, numberArgument(leaseMs)]).then(
      () => true,
      () => false,
    );
    // The caller does not wait for the release either (a request ending is not slowed by Redis);
    // when it fails, the lease's deadline takes the count back.
    return once(() => void acquired.then((held) => (held ? redis.background.zrem(key, lease) : undefined)).catch(() => undefined));
  }

  /** This node wrote health: what it read before may be out of date, for every pool. */
  function forgetRecentReads(): void {
    healthWrites += 1;
    recentReads.clear();
  }

  /**
   * A pool of one whose targets were all healthy a moment ago goes on that read: the request
   * waits for no Redis round trip, and its count goes with the other writes nobody waits for,
   * several requests' in one socket write (decision 0033). Not while Redis is known to be down:
   * the read then fails at once, and the failover store answers from memory. Undefined, having
   * counted nothing, when there is no such read.
   */
  function onRecentRead(ids: readonly string[], acquireId: string, now: number): ReadAndAcquired | undefined {
    const recent = recentReads.get(ids.join('\n'));
    if (recent === undefined || now < recent.at || now - recent.at >= recentMs || !redis.healthy) return undefined;
    return { health: recent.health, release: acquireUnawaited(redis.background, acquireId, now) };
  }

  return {
    async read(ids, now) {
      if (ids.length === 0) return new Map();
      const reply = await run(scripts.read, snapshotKeys(ids), [numberArgument(now)]);
      return healthById(ids, reply, now);
    },

    readAndAcquireNow: onRecentRead,

    async readAndAcquire(ids, acquireId, now) {
      const onRecent = onRecentRead(ids, acquireId, now);
      if (onRecent !== undefined) return onRecent;
      // One script where read and acquire were two: one command and one socket write fewer per
      // request before its upstream call (decision 0031). Its answer is awaited, for the read.
      const readKey = ids.join('\n');
      const lease = flat(randomUUID());
      const key = inFlightKey(acquireId);
      const writesBefore = healthWrites;
      const reply = await run(scripts.readAndAcquire, [...snapshotKeys(ids), key], [numberArgument(now), lease, numberArgument(leaseMs)]);
      const health = healthById(ids, reply, now);
      // A read this node wrote health during may predate that write: it answers this request only.
      if (recentMs > 0 && writesBefore === healthWrites && [...health.values()].every((target) => target.state === 'healthy')) {
        if (recentReads.size >= maxRecentReads) recentReads.clear();
        recentReads.set(readKey, { at: now, health });
      } else {
        recentReads.delete(readKey);
      }
      return { health, release: once(() => void redis.background.zrem(key, lease).catch(() => undefined)) };
    },

    async claimProbe(id, now) {
      forgetRecentReads();
      const reply = await run(scripts.claimProbe, [targetKey(id)], [numberArgument(now), numberArgument(policy.probeTimeoutMs), numberArgument(policy.maxMs)]);
      return reply === 1;
    },

    async recordSuccess(id) {
      forgetRecentReads();
      await run(scripts.recordSuccess, [targetKey(id)], []);
    },

    async recordFailure(id, failure: Failure, now) {
      forgetRecentReads();
      const reply = await run(scripts.recordFailure, [targetKey(id), inFlightKey(id)], [
        numberArgument(now),
        failure.code,
        failure.retryAfterMs !== undefined ? numberArgument(failure.retryAfterMs) : '',
        failure.disable === true ? '1' : '0',
        numberArgument(policy.initialMs),
        numberArgument(policy.maxMs),
      ]);
      return healthOf(snapshotsOf(reply, 1)[0] ?? [], now);
    },

    acquire(id, now) {
      // Nobody waits for the count: it is advice for least-busy balancing, so the request does
      // not wait a Redis round trip for it before its upstream call (decision 0030). Sent at once
      // on the command connection, it reaches Redis before any later read of this node; when
      // Redis is known to be down, the caller falls back to this node's own count.
      if (!redis.healthy) return Promise.reject(unavailable(new Error('not connected')));
      return Promise.resolve(acquireUnawaited(redis.command, id, now));
    },

    async reset(id) {
      forgetRecentReads();
      try {
        await redis.command.del(targetKey(id));
      } catch (error) {
        throw unavailable(error);
      }
    },
  };
}
