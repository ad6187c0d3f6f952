// The TicketStore contract, run on the memory store and on the Redis store (one suite, so they
// cannot drift apart): a ticket is random and URL-safe, opens one connection and only one even
// when two race for it, keeps what it granted, expires to the millisecond, and a spent ticket
// resumes only its own stream until its grant ends. Then what only each store promises: memory
// stays bounded; Redis tickets work across nodes, vanish after their real TTL, and fail fast.
import { beforeAll, afterEach, beforeEach, describe, expect, it as itAlways } from 'vitest';
import { redisBackends, type RedisBackend, uniqueKeyPrefix, deleteKeysUnder, keysUnder } from '../../test/support/redis.js';
import { unusedPort } from '../../test/support/tcp.js';
import { createRedisConnections, type RedisConnections, type RedisTarget } from '../redis/connection.js';
import { SluiceError } from '../errors/sluice-error.js';
import { createLogger } from '../observability/logger.js';
import type { Principal } from '../contract/principal.js';
import { createRedisTicketStore } from './redis-ticket-store.js';
import { createMemoryTicketStore, type MemoryTicketStore, type TicketStore } from './tickets.js';

async function rejectionOf(promise: Promise<unknown>): Promise<SluiceError> {
  const error: unknown = await promise.then(() => undefined, (reason: unknown) => reason);
  if (!(error instanceof SluiceError)) throw new Error(`expected a SluiceError, got ${String(error)}`);
  return error;
}

const alice: Principal = { userId: 'alice', role: 'service', via: 'key', keyId: 'abcdefghijkl', keyLimits: { concurrentStreams: 2 } };
const start = Date.UTC(2025, 0, 1);
let nowMs = start;

const backends = await redisBackends();
/** The backend the running describe block tests (the blocks run one after another). */
let backend: RedisBackend = backends[0]!;

/** Connections opened by a test and the key prefixes it wrote under, cleaned up after it. */
const opened: { redis: RedisConnections; keyPrefix: string }[] = [];

async function connect(keyPrefix: string, target: RedisTarget = backend.target): Promise<RedisConnections> {
  const redis = createRedisConnections({ ...target, keyPrefix, logger: createLogger('silent') });
  opened.push({ redis, keyPrefix });
  if (target === backend.target) await redis.ready();
  return redis;
}

afterEach(async () => {
  for (const { redis, keyPrefix } of opened.splice(0)) {
    if (redis.healthy) await deleteKeysUnder(redis.command, keyPrefix);
    await redis.close();
  }
});

interface Implementation {
  readonly name: string;
  readonly available: boolean;
  create(now: () => number): Promise<TicketStore>;
}

const implementations: Implementation[] = [
  { name: 'memory', available: true, create: async (now) => createMemoryTicketStore({ now, sweepIntervalMs: 10_000 }) },
  ...backends.map((each) => ({
    name: `redis (${each.name})`,
    available: each.available,
    create: async (now: () => number) => {
      backend = each;
      return createRedisTicketStore(await connect(uniqueKeyPrefix()), { now });
    },
  })),
];

describe.each(implementations)('$name ticket store', (implementation) => {
  const it = implementation.available ? itAlways : itAlways.skip;
  let tickets: TicketStore;
  beforeEach(async () => {
    nowMs = start;
    if (implementation.available) tickets = await implementation.create(() => nowMs);
  });

  it('issues 32 random bytes in base64url, safe in a URL as they are', async () => {
    const { ticket, expiresAt } = await tickets.issue(alice, 30_000);
    expect(ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(ticket, 'base64url')).toHaveLength(32);
    expect(encodeURIComponent(ticket)).toBe(ticket);
    expect(expiresAt).toBe(start + 30_000);
    expect((await tickets.issue(alice, 30_000)).ticket).not.toBe(ticket);
  });

  it('redeems a ticket once for the principal it was issued for', async () => {
    const { ticket } = await tickets.issue(alice, 30_000);
    await expect(tickets.redeem(ticket)).resolves.toEqual(alice);
    const second = await rejectionOf(tickets.redeem(ticket));
    expect(second.code).toBe('invalid_ticket');
    expect(second.message).toMatch(/already used/);
  });

  it('lets only one of two racing redeems win', async () => {
    const { ticket } = await tickets.issue(alice, 30_000);
    const outcomes = await Promise.allSettled([tickets.redeem(ticket), tickets.redeem(ticket)]);
    expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['fulfilled', 'rejected']);
  });

  it('keeps what the ticket grants even if the caller later changes its principal object', async () => {
    const mutable = { ...alice, keyLimits: { concurrentStreams: 2 } };
    const { ticket } = await tickets.issue(mutable, 30_000);
    mutable.keyLimits.concurrentStreams = 100;
    await expect(tickets.redeem(ticket)).resolves.toMatchObject({ keyLimits: { concurrentStreams: 2 } });
  });

  it('keeps the model allowlist of the key it was issued for, on redeem and on resume', async () => {
    const restricted: Principal = { ...alice, allowedModels: ['chat', 'spark-*'] };
    const { ticket } = await tickets.issue(restricted, 30_000);
    await expect(tickets.redeem(ticket)).resolves.toEqual(restricted);
    await tickets.allowResume(ticket, restricted, 'generation-1', start + 60_000);
    await expect(tickets.resume(ticket, 'generation-1')).resolves.toEqual(restricted);
  });

  it('refuses an expired ticket from its expiry on, saying when it expired', async () => {
    const { ticket: early } = await tickets.issue(alice, 30_000);
    const { ticket: late } = await tickets.issue(alice, 30_000);
    nowMs = start + 29_999;
    await expect(tickets.redeem(early)).resolves.toMatchObject({ userId: 'alice' });
    nowMs = start + 30_000;
    const error = await rejectionOf(tickets.redeem(late));
    expect(error.code).toBe('invalid_ticket');
    expect(error.message).toContain('expired at 2025-01-01T00:00:30.000Z');
  });

  it('refuses unknown and malformed tickets', async () => {
    expect((await rejectionOf(tickets.redeem(Buffer.alloc(32).toString('base64url')))).code).toBe('invalid_ticket');
    expect((await rejectionOf(tickets.redeem(''))).message).toMatch(/malformed/);
    expect((await rejectionOf(tickets.redeem('sk-sluice-abc'))).code).toBe('invalid_ticket');
  });

  it('refuses a ttl that is not a positive number', async () => {
    await expect(tickets.issue(alice, 0)).rejects.toThrow(RangeError);
    await expect(tickets.issue(alice, Number.NaN)).rejects.toThrow(RangeError);
  });

  it('a spent ticket reopens only the stream it opened, only until the grant ends', async () => {
    const principal = { userId: 'alice', role: 'user' as const, via: 'ticket' as const, keyLimits: {} };
    const { ticket } = await tickets.issue(principal, 60_000);
    await tickets.redeem(ticket);
    await expect(tickets.redeem(ticket)).rejects.toMatchObject({ code: 'invalid_ticket' });
    await expect(tickets.resume(ticket, 'gen-1')).rejects.toMatchObject({ code: 'invalid_ticket' });
    await tickets.allowResume(ticket, principal, 'gen-1', nowMs + 5000);
    await expect(tickets.resume(ticket, 'gen-1')).resolves.toEqual(principal);
    await expect(tickets.resume(ticket, 'gen-1')).resolves.toEqual(principal);
    await expect(tickets.resume(ticket, 'gen-2')).rejects.toMatchObject({ code: 'invalid_ticket' });
    // A grant is no ticket: it opens nothing new.
    await expect(tickets.redeem(ticket)).rejects.toMatchObject({ code: 'invalid_ticket' });
    nowMs += 4999;
    await expect(tickets.resume(ticket, 'gen-1')).resolves.toEqual(principal);
    nowMs += 1;
    await expect(tickets.resume(ticket, 'gen-1')).rejects.toMatchObject({ code: 'invalid_ticket' });
  });
});

describe('memory ticket store', () => {
  let tickets: MemoryTicketStore;
  beforeEach(() => {
    nowMs = start;
    tickets = createMemoryTicketStore({ now: () => nowMs, sweepIntervalMs: 10_000 });
  });

  itAlways('sweeps expired tickets nobody redeemed, so memory stays bounded', async () => {
    for (let index = 0; index < 100; index += 1) await tickets.issue(alice, 5_000);
    expect(tickets.size).toBe(100);
    nowMs = start + 9_999;
    await tickets.issue(alice, 5_000);
    // Not yet: sweeps run at most once per interval, so a burst of issues stays O(1) each.
    expect(tickets.size).toBe(101);
    nowMs = start + 10_000;
    const { ticket } = await tickets.issue(alice, 5_000);
    // The 100 expired ones are gone; the one issued at 9 999 ms and the new one are still valid.
    expect(tickets.size).toBe(2);
    await expect(tickets.redeem(ticket)).resolves.toMatchObject({ userId: 'alice' });
  });

});

for (const each of backends) describe(`redis ticket store across nodes (${each.name})`, () => {
  const it = each.available ? itAlways : itAlways.skip;
  beforeAll(() => {
    backend = each;
  });

  async function twoNodes(): Promise<[TicketStore, TicketStore]> {
    const keyPrefix = uniqueKeyPrefix();
    const clock = { now: () => Date.now() };
    return [createRedisTicketStore(await connect(keyPrefix), clock), createRedisTicketStore(await connect(keyPrefix), clock)];
  }

  it('a ticket issued on one node is redeemed once on another, and never again on either', async () => {
    const [first, second] = await twoNodes();
    const { ticket } = await first.issue(alice, 30_000);
    await expect(second.redeem(ticket)).resolves.toEqual(alice);
    await expect(first.redeem(ticket)).rejects.toMatchObject({ code: 'invalid_ticket' });
    await expect(second.redeem(ticket)).rejects.toMatchObject({ code: 'invalid_ticket' });
  });

  it('of ten redeems racing on two nodes, exactly one wins', async () => {
    const [first, second] = await twoNodes();
    const { ticket } = await first.issue(alice, 30_000);
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, (_, index) => (index % 2 === 0 ? first : second).redeem(ticket)));
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
  });

  it('a ticket is gone once its real TTL has passed', async () => {
    const [first, second] = await twoNodes();
    const { ticket } = await first.issue(alice, 200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const error = await rejectionOf(second.redeem(ticket));
    expect(error.code).toBe('invalid_ticket');
    expect(error.message).toMatch(/unknown or was already used/);
  });

  it('a resume granted on one node works on the other until the grant ends in real time', async () => {
    const [first, second] = await twoNodes();
    const { ticket } = await first.issue(alice, 30_000);
    await second.redeem(ticket);
    await second.allowResume(ticket, alice, 'gen-1', Date.now() + 200);
    await expect(first.resume(ticket, 'gen-1')).resolves.toEqual(alice);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await expect(first.resume(ticket, 'gen-1')).rejects.toMatchObject({ code: 'invalid_ticket' });
  });

  it('keeps tickets out of Redis key names: keys hold a digest', async () => {
    const keyPrefix = uniqueKeyPrefix();
    const redis = await connect(keyPrefix);
    const store = createRedisTicketStore(redis, { now: () => Date.now() });
    const { ticket } = await store.issue(alice, 30_000);
    const keys = await keysUnder(redis.command, keyPrefix);
    expect(keys).toHaveLength(1);
    expect(keys[0]).not.toContain(ticket);
    expect(await redis.command.pttl(keys[0] ?? '')).toBeGreaterThan(29_000);
  });

  itAlways('a dead Redis fails issue and redeem at once with a retryable error', async () => {
    const store = createRedisTicketStore(await connect(uniqueKeyPrefix(), { url: `redis://127.0.0.1:${String(await unusedPort())}` }), { now: () => Date.now() });
    const started = Date.now();
    await expect(store.issue(alice, 30_000)).rejects.toMatchObject({ code: 'store_unavailable', retryable: true });
    await expect(store.redeem(Buffer.alloc(32).toString('base64url'))).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(Date.now() - started).toBeLessThan(1500);
  });
});
