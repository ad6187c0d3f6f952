// The TicketStore of a cluster: tickets in Redis, so a ticket issued by one node opens a connection
// on any other, still exactly once. Each step is one command: issue is SET … PX ttl NX, redeem is
// GETDEL (Redis ≥ 6.2), so two nodes redeeming one ticket at once cannot both get it; an expired
// ticket is simply gone. Redis never sees a ticket itself: keys hold its SHA-256, so a key listing
// or a dump reveals nothing that could be redeemed.
import { createHash, randomBytes as nodeRandomBytes } from 'node:crypto';
import { z } from 'zod';
import type { RedisConnections } from '../redis/connection.js';
import { SluiceError } from '../errors/sluice-error.js';
import type { RandomBytes } from './api-keys.js';
import { roles, type Principal } from '../contract/principal.js';
import type { IssuedTicket, TicketStore } from './tickets.js';

export interface RedisTicketStoreOptions {
  /** Milliseconds since the epoch; what `expiresAt` and `untilMs` are measured on. */
  readonly now: () => number;
  /** Defaults to `crypto.randomBytes`. */
  readonly randomBytes?: RandomBytes;
}

const ticketPattern = /^[A-Za-z0-9_-]{43}$/;

const usedOrUnknown = 'The ticket is unknown or was already used: a ticket opens one connection. Ask POST /api/tickets for a new one right before connecting.';

const limitsSchema = z.object({
  requestsPerMinute: z.number().exactOptional(),
  tokensPerMinute: z.number().exactOptional(),
  concurrentStreams: z.number().exactOptional(),
  dailyTokens: z.number().exactOptional(),
  monthlyTokens: z.number().exactOptional(),
});

/** What this store wrote; read back through it so a foreign or corrupt value is refused, not trusted. */
const principalSchema = z.object({
  userId: z.string(),
  role: z.enum(roles),
  via: z.enum(['key', 'jwt', 'ticket', 'anonymous']),
  keyId: z.string().exactOptional(),
  keyLimits: limitsSchema,
  actingAs: z.string().exactOptional(),
  // Without it the parse would drop the list, and a ticket from a restricted key could use every model.
  allowedModels: z.array(z.string()).readonly().exactOptional(),
}) satisfies z.ZodType<Principal>;

const ticketEntrySchema = z.object({ principal: principalSchema, expiresAt: z.number() });
const resumeEntrySchema = z.object({ principal: principalSchema, scope: z.string(), expiresAt: z.number() });

function storageFailure(error: unknown): SluiceError {
  return new SluiceError('store_unavailable', {
    message: `Redis, which holds connection tickets, did not answer (${error instanceof Error ? error.message : String(error)}); retry shortly.`,
    cause: error,
  });
}

/**
 * A ticket store in Redis, shared by every node connected to it, with the memory store's
 * semantics. Expiry is checked twice: Redis drops the key after the TTL (so nothing accumulates),
 * and the entry's own `expiresAt` is compared with `now()` (so an expired ticket is refused as
 * such, to the millisecond of the caller's clock, even before Redis has dropped it). Keys:
 * `<keyPrefix>ticket:<sha256>` and `<keyPrefix>ticket-resume:<sha256>`. Every method fails with
 * SluiceError `store_unavailable` (503, retryable) when Redis does not answer.
 */
export function createRedisTicketStore(redis: RedisConnections, options: RedisTicketStoreOptions): TicketStore {
  const { now } = options;
  const random = options.randomBytes ?? nodeRandomBytes;
  const digest = (ticket: string): string => createHash('sha256').update(ticket).digest('base64url');
  const ticketKey = (ticket: string): string => `${redis.keyPrefix}ticket:${digest(ticket)}`;
  const resumeKey = (ticket: string): string => `${redis.keyPrefix}ticket-resume:${digest(ticket)}`;

  async function call<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw storageFailure(error);
    }
  }

  function parsed<T>(schema: z.ZodType<T>, stored: string): T {
    let value: unknown;
    try {
      value = JSON.parse(stored);
    } catch {
      value = undefined;
    }
    const result = schema.safeParse(value);
    if (!result.success) throw new SluiceError('internal_error', { message: 'A ticket in Redis has an unexpected shape; it was not written by this version of Sluice.' });
    return result.data;
  }

  return {
    async issue(principal, ttlMs): Promise<IssuedTicket> {
      if (!(Number.isFinite(ttlMs) && ttlMs > 0)) throw new RangeError(`A ticket's ttlMs must be a positive number of milliseconds; got ${String(ttlMs)}.`);
      const ticket = Buffer.from(random(32)).toString('base64url');
      const expiresAt = now() + ttlMs;
      // JSON is the copy: later changes to the caller's object cannot change what the ticket grants.
      const entry = JSON.stringify({ principal, expiresAt });
      // NX: 256 random bits never collide, but if the generator were broken a ticket must not
      // silently take over another's grant.
      const written = await call(() => redis.command.set(ticketKey(ticket), entry, 'PX', Math.ceil(ttlMs), 'NX'));
      if (written !== 'OK') throw new Error('A freshly generated ticket already exists in Redis: the random generator repeats itself.');
      return { ticket, expiresAt };
    },

    async redeem(ticket): Promise<Principal> {
      if (!ticketPattern.test(ticket)) {
        throw new SluiceError('invalid_ticket', { message: 'The ticket is malformed: tickets are the 43-character value POST /api/tickets returned; pass it unchanged as ?ticket=.' });
      }
      // GETDEL before any check, so two connections (on any nodes) racing with one ticket cannot both win.
      const stored = await call(() => redis.command.getdel(ticketKey(ticket)));
      if (stored === null) throw new SluiceError('invalid_ticket', { message: usedOrUnknown });
      const entry = parsed(ticketEntrySchema, stored);
      if (entry.expiresAt <= now()) {
        throw new SluiceError('invalid_ticket', { message: `The ticket expired at ${new Date(entry.expiresAt).toISOString()}; tickets live only seconds. Ask POST /api/tickets for a new one right before connecting.` });
      }
      return entry.principal;
    },

    async allowResume(ticket, principal, scope, untilMs): Promise<void> {
      // PX of the time left on `now()`, not PXAT `untilMs`: the grant's end is a time on the
      // caller's clock, the same clock `issue` measures from, and Redis's clock is not that one.
      const remainingMs = Math.ceil(untilMs - now());
      if (!(remainingMs > 0)) {
        // A grant already over resumes nothing; an older grant for this ticket is replaced by it.
        await call(() => redis.command.del(resumeKey(ticket)));
        return;
      }
      await call(() => redis.command.set(resumeKey(ticket), JSON.stringify({ principal, scope, expiresAt: untilMs }), 'PX', remainingMs));
    },

    async resume(ticket, scope): Promise<Principal> {
      const stored = await call(() => redis.command.get(resumeKey(ticket)));
      const entry = stored === null ? undefined : parsed(resumeEntrySchema, stored);
      if (!entry || entry.scope !== scope || entry.expiresAt <= now()) throw new SluiceError('invalid_ticket', { message: usedOrUnknown });
      return entry.principal;
    },
  };
}
