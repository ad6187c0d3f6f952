// The LimitState of a cluster: counters in Redis, shared by every node, each method ONE Lua script
// so that admits racing on several nodes can never take more than the limits allow. The
// arithmetic is memory-limit-state.ts and token-bucket.ts repeated line for line in Lua (both are
// IEEE doubles, so the answers are the same to the millisecond), driven by the caller's `now`,
// never Redis TIME, so fake clocks work and the two states pass the same contract tests.
//
// Keys, all `<keyPrefix>{limits}:<check key>`; the one hash tag puts every limit key in one Redis
// Cluster slot, which a script touching a key's and a user's counters needs:
// - token bucket: a hash {tokens, updatedAt}, PEXPIRE'd for when it would be full again (absent
//   means full, so an idle bucket vanishes by itself);
// - quota: a string holding the used tokens, expiring at PXAT periodEnd (absent: needs a seed);
// - concurrency: a sorted set of lease ids scored by their deadline (now + concurrencyLeaseMs).
import type { RedisConnections } from '../redis/connection.js';
import { defineLuaScript, runLuaScript, type LuaScript } from '../redis/lua-script.js';
import { SluiceError } from '../errors/sluice-error.js';
import { concurrencyRetryAfterMs, type AdmitResult, type LimitCheck, type LimitState, type QuotaCheck } from './limit-state.js';

export interface RedisLimitStateOptions {
  /**
   * How long a concurrency slot is held at most, in ms of the clock passed to the methods: a node
   * that crashed between admit and settle leaks its slots for this long, no longer. Default
   * 3 600 000 (1 h). The lease is not renewed while the stream runs: renewing would need a timer
   * per stream and a script call per tick on every node, for the rare generation that streams
   * longer than an hour; such a stream loses its slot after the hour, so its user may then run
   * one stream more than the limit until it ends. A positive whole number.
   */
  readonly concurrencyLeaseMs?: number;
}

/** Shared by the three scripts: number formatting and the token-bucket arithmetic. */
const luaPrelude = `
-- %.17g round-trips a double exactly; Lua's own tostring keeps only 14 digits.
local function fmt(x) return string.format('%.17g', x) end

-- token-bucket.ts balanceAt: a clock that went back adds nothing.
local function balanceAt(tokens, updatedAt, capacity, refill, at)
  return math.min(capacity, tokens + math.max(0, at - updatedAt) * refill)
end

-- An absent bucket is full at now.
local function loadBucket(key, capacity, now)
  local stored = redis.call('HMGET', key, 'tokens', 'updatedAt')
  local tokens, updatedAt = tonumber(stored[1]), tonumber(stored[2])
  if tokens == nil or updatedAt == nil then return capacity, now end
  return tokens, updatedAt
end

-- Stores the bucket until it would be full again; a full (or never-refilling) one carries no
-- information and is deleted, since absent means full.
local function saveBucket(key, tokens, updatedAt, capacity, refill, now)
  if tokens >= capacity or refill <= 0 then
    redis.call('DEL', key)
    return
  end
  local ms = math.ceil((capacity - tokens) / refill + (updatedAt - now))
  redis.call('HSET', key, 'tokens', fmt(tokens), 'updatedAt', fmt(updatedAt))
  redis.call('PEXPIRE', key, math.max(1, ms))
end

-- token-bucket.ts msUntil, the same steps: nil stands for Infinity.
local function msUntil(tokens, updatedAt, capacity, refill, amount, now, strict)
  local function reached(ms)
    local balance = balanceAt(tokens, updatedAt, capacity, refill, now + ms)
    if strict then return balance > amount end
    return balance >= amount
  end
  if reached(0) then return 0 end
  if refill <= 0 or (strict and capacity <= amount) or ((not strict) and capacity < amount) then return nil end
  local base = math.max(now, updatedAt) - now
  local fromBalance = balanceAt(tokens, updatedAt, capacity, refill, now + base)
  local ms = math.max(1, base + math.ceil((amount - fromBalance) / refill))
  while not reached(ms) do ms = ms + 1 end
  while ms > 1 and reached(ms - 1) do ms = ms - 1 end
  return ms
end

local function refillOf(limit, periodMs)
  if periodMs > 0 then return limit / periodMs end
  return 0
end
`;

/**
 * KEYS: one per check. ARGV: now, lease id, lease ms, concurrency retry-after ms, then three per
 * check: kind, limit, periodMs (rate) or periodEnd (quota) or 0.
 * Returns {'admitted'}, {'refused', check index (1-based), retry-after ms as a string} or
 * {'needs-seed', check index, ...}.
 */
const admitScript = `${luaPrelude}
local now = tonumber(ARGV[1])
local lease = ARGV[2]
local leaseMs = tonumber(ARGV[3])
local concurrencyWait = tonumber(ARGV[4])
local function arg(i, field) return ARGV[4 + (i - 1) * 3 + field] end

local missing = {}
for i = 1, #KEYS do
  if arg(i, 1) == 'quota' then
    if now >= tonumber(arg(i, 3)) or redis.call('EXISTS', KEYS[i]) == 0 then missing[#missing + 1] = i end
  end
end
if #missing > 0 then return {'needs-seed', unpack(missing)} end

local failed, worst = 0, -1
for i = 1, #KEYS do
  local kind, limit, extra = arg(i, 1), tonumber(arg(i, 2)), tonumber(arg(i, 3))
  local wait = nil
  if kind == 'requests' or kind == 'tokens' then
    local refill = refillOf(limit, extra)
    local tokens, updatedAt = loadBucket(KEYS[i], limit, now)
    local ms
    if kind == 'requests' then
      ms = msUntil(tokens, updatedAt, limit, refill, 1, now, false)
    else
      ms = msUntil(tokens, updatedAt, limit, refill, 0, now, true)
    end
    if ms == nil then wait = extra elseif ms > 0 then wait = ms end
  elseif kind == 'concurrency' then
    -- Leases past their deadline belong to nodes that died before settling.
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[1])
    if redis.call('ZCARD', KEYS[i]) >= limit then wait = concurrencyWait end
  elseif kind == 'quota' then
    local used = tonumber(redis.call('GET', KEYS[i])) or 0
    if used >= limit then wait = math.max(0, extra - now) end
  end
  if wait ~= nil and wait > worst then
    failed = i
    worst = wait
  end
end
if failed > 0 then return {'refused', failed, fmt(worst)} end

for i = 1, #KEYS do
  local kind, limit, extra = arg(i, 1), tonumber(arg(i, 2)), tonumber(arg(i, 3))
  if kind == 'requests' then
    local refill = refillOf(limit, extra)
    local tokens, updatedAt = loadBucket(KEYS[i], limit, now)
    local balance = balanceAt(tokens, updatedAt, limit, refill, now)
    if balance >= 1 then saveBucket(KEYS[i], balance - 1, math.max(now, updatedAt), limit, refill, now) end
  elseif kind == 'concurrency' then
    redis.call('ZADD', KEYS[i], fmt(now + leaseMs), lease)
    -- The set outlives its newest lease, and no longer (real time; the scores are the caller's).
    if redis.call('PTTL', KEYS[i]) < leaseMs then redis.call('PEXPIRE', KEYS[i], leaseMs) end
  end
end
return {'admitted'}
`;

/** KEYS: the quota counter. ARGV: used tokens, periodEnd, now. */
const seedScript = `
local periodEnd = ARGV[2]
if tonumber(ARGV[3]) >= tonumber(periodEnd) then
  -- A counter of an ended period is as good as absent: replaced, as in memory.
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', periodEnd)
else
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', periodEnd, 'NX')
end
return 0
`;

/** KEYS: one per check. ARGV: now, lease id, tokens, then three per check as for admit. */
const settleScript = `${luaPrelude}
local now = tonumber(ARGV[1])
local lease = ARGV[2]
local amount = tonumber(ARGV[3])
local function arg(i, field) return ARGV[3 + (i - 1) * 3 + field] end

for i = 1, #KEYS do
  local kind, limit, extra = arg(i, 1), tonumber(arg(i, 2)), tonumber(arg(i, 3))
  if kind == 'tokens' then
    local refill = refillOf(limit, extra)
    local tokens, updatedAt = loadBucket(KEYS[i], limit, now)
    local balance = balanceAt(tokens, updatedAt, limit, refill, now)
    saveBucket(KEYS[i], balance - amount, math.max(now, updatedAt), limit, refill, now)
  elseif kind == 'concurrency' then
    redis.call('ZREM', KEYS[i], lease)
  elseif kind == 'quota' then
    local periodEnd = arg(i, 3)
    local used = nil
    if now < extra then used = tonumber(redis.call('GET', KEYS[i])) end
    -- GET and SET rather than INCRBY, so a fractional count adds up exactly as in memory; a
    -- counter created here (its period began during the generation) expires with its period.
    if used == nil then
      redis.call('SET', KEYS[i], fmt(amount), 'PXAT', periodEnd)
    else
      redis.call('SET', KEYS[i], fmt(used + amount), 'KEEPTTL')
    end
  end
end
return 0
`;

const scripts = { admit: defineLuaScript(admitScript), seed: defineLuaScript(seedScript), settle: defineLuaScript(settleScript) };

/** A number as a script argument: String() round-trips a double, and Lua's tonumber reads it back. */
function numberArgument(value: number): string {
  return String(value);
}

/** The three per-check arguments both admit and settle take. */
function checkArguments(check: LimitCheck): string[] {
  switch (check.kind) {
    case 'requests':
    case 'tokens':
      return [check.kind, numberArgument(check.limit), numberArgument(check.periodMs)];
    case 'concurrency':
      return [check.kind, numberArgument(check.limit), '0'];
    case 'quota':
      return [check.kind, numberArgument(check.limit), numberArgument(check.periodEnd)];
  }
}

function isIndex(value: unknown, checks: readonly LimitCheck[]): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= checks.length;
}

/** The admit script's answer, checked, as an AdmitResult naming the caller's own check objects. */
function admitResultOf(reply: unknown, checks: readonly LimitCheck[]): AdmitResult {
  if (Array.isArray(reply)) {
    const [outcome, ...rest] = reply as unknown[];
    const checkAt = (index: unknown): LimitCheck => {
      if (!isIndex(index, checks)) throw new Error(`The limits script named check ${String(index)} of ${String(checks.length)}.`);
      // isIndex checked the range.
      return checks[index - 1] as LimitCheck;
    };
    if (outcome === 'admitted') return { outcome: 'admitted' };
    if (outcome === 'refused') {
      const retryAfterMs = Number(rest[1]);
      if (Number.isFinite(retryAfterMs)) return { outcome: 'refused', failed: checkAt(rest[0]), retryAfterMs };
    }
    if (outcome === 'needs-seed') {
      const quotas = rest.map((index) => {
        const check = checkAt(index);
        if (check.kind !== 'quota') throw new Error(`The limits script asked to seed ${check.key}, which is no quota.`);
        return check;
      });
      return { outcome: 'needs-seed', quotas };
    }
  }
  throw new Error(`The limits script answered ${JSON.stringify(reply)}.`);
}

/**
 * A LimitState in Redis, shared by every node connected to it: the same semantics as the memory
 * state, each method one atomic script. Every key is under `redis.keyPrefix` plus the hash tag
 * `{limits}`, so the prefix itself must not contain `{`. A method fails with SluiceError
 * `store_unavailable` (503, retryable) when Redis does not answer, at once when the connection is
 * down (no offline queue) and after the connection's command timeout otherwise; nothing was taken
 * or charged then. An admission with no checks needs no Redis and is admitted without it.
 */
export function createRedisLimitState(redis: RedisConnections, options: RedisLimitStateOptions = {}): LimitState {
  const leaseMs = options.concurrencyLeaseMs ?? 3_600_000;
  if (!(Number.isInteger(leaseMs) && leaseMs > 0)) throw new RangeError(`concurrencyLeaseMs must be a positive whole number of ms, got ${String(leaseMs)}.`);
  const keyOf = (check: LimitCheck): string => `${redis.keyPrefix}{limits}:${check.key}`;

  /** One script call; any failure is store_unavailable (nothing was taken or charged). */
  async function run(script: LuaScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    try {
      return await runLuaScript(redis.command, script, keys, args);
    } catch (error) {
      throw new SluiceError('store_unavailable', {
        message: `Redis, which holds the rate limits, did not answer (${error instanceof Error ? error.message : String(error)}); retry shortly.`,
        cause: error,
      });
    }
  }

  return {
    async admit(checks: readonly LimitCheck[], now: number, leaseId: string): Promise<AdmitResult> {
      if (checks.length === 0) return { outcome: 'admitted' };
      const reply = await run(scripts.admit, checks.map(keyOf), [
        numberArgument(now),
        leaseId,
        numberArgument(leaseMs),
        numberArgument(concurrencyRetryAfterMs),
        ...checks.flatMap(checkArguments),
      ]);
      return admitResultOf(reply, checks);
    },

    async seed(quota: QuotaCheck, usedTokens: number, now: number): Promise<void> {
      // NaN cannot be stored; the limiter never passes it, memory's Math.max would keep it.
      const used = Number.isNaN(usedTokens) ? 0 : Math.max(0, usedTokens);
      await run(scripts.seed, [keyOf(quota)], [numberArgument(used), numberArgument(quota.periodEnd), numberArgument(now)]);
    },

    async settle(checks: readonly LimitCheck[], tokens: number, now: number, leaseId: string): Promise<void> {
      const charged = checks.filter((check) => check.kind !== 'requests');
      if (charged.length === 0) return;
      const amount = Number.isFinite(tokens) ? Math.max(0, tokens) : 0;
      await run(scripts.settle, charged.map(keyOf), [numberArgument(now), leaseId, numberArgument(amount), ...charged.flatMap(checkArguments)]);
    },
  };
}
