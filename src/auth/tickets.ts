// Short-lived, single-use tickets for the routes browsers open with EventSource or WebSocket, which
// cannot send an Authorization header. A ticket stands for the principal that asked for it, so a
// long-lived key never has to appear in a URL.
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { SluiceError } from '../errors/sluice-error.js';
import type { Principal } from '../contract/principal.js';
import type { RandomBytes } from './api-keys.js';

export interface IssuedTicket {
  /** 32 random bytes in base64url (43 characters): safe in a query string as is. */
  readonly ticket: string;
  /** Milliseconds since the epoch. */
  readonly expiresAt: number;
}

/**
 * Where tickets live between `POST /api/tickets` and the connection that redeems them. Async, and
 * the principal is stored as plain data, so a shared (Redis) store can implement it for a cluster.
 */
export interface TicketStore {
  /** Issues a ticket for `principal`, valid for `ttlMs` milliseconds (a positive number). */
  issue(principal: Principal, ttlMs: number): Promise<IssuedTicket>;
  /**
   * Returns the principal the ticket was issued for, exactly as issued, and uses the ticket up.
   * Fails with `invalid_ticket` when the ticket is unknown, already used or expired.
   */
  redeem(ticket: string): Promise<Principal>;
  /**
   * Lets a spent ticket reconnect to the one stream it opened (`scope`: a generation id) until
   * `untilMs`. EventSource re-sends its URL, used ticket included, on every reconnect; without
   * this a dropped stream could never resume. The grant is for that stream only.
   */
  allowResume(ticket: string, principal: Principal, scope: string, untilMs: number): Promise<void>;
  /** The principal of a spent ticket allowed to resume `scope`; fails with `invalid_ticket` otherwise. */
  resume(ticket: string, scope: string): Promise<Principal>;
}

export interface MemoryTicketStoreOptions {
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  /** Defaults to `crypto.randomBytes`. */
  readonly randomBytes?: RandomBytes;
  /**
   * Expired tickets nobody redeemed are swept at most this often, during `issue` or `redeem`, so
   * memory holds at most the tickets issued in one TTL plus this interval. Default 30 000 ms.
   */
  readonly sweepIntervalMs?: number;
}

export interface MemoryTicketStore extends TicketStore {
  /** Tickets currently held, expired-but-unswept ones included (for tests and metrics). */
  readonly size: number;
}

const ticketPattern = /^[A-Za-z0-9_-]{43}$/;

const usedOrUnknown = 'The ticket is unknown or was already used: a ticket opens one connection. Ask POST /api/tickets for a new one right before connecting.';

/** A ticket store in this process's memory: right for one instance, lost on restart. */
export function createMemoryTicketStore(options: MemoryTicketStoreOptions): MemoryTicketStore {
  const { now } = options;
  const random = options.randomBytes ?? nodeRandomBytes;
  const sweepIntervalMs = options.sweepIntervalMs ?? 30_000;
  const tickets = new Map<string, { readonly principal: Principal; readonly expiresAt: number }>();
  const resumable = new Map<string, { readonly principal: Principal; readonly scope: string; readonly expiresAt: number }>();
  let nextSweepAt = now() + sweepIntervalMs;

  function sweepIfDue(at: number): void {
    if (at < nextSweepAt) return;
    nextSweepAt = at + sweepIntervalMs;
    for (const [ticket, entry] of tickets) {
      if (entry.expiresAt <= at) tickets.delete(ticket);
    }
    for (const [ticket, entry] of resumable) {
      if (entry.expiresAt <= at) resumable.delete(ticket);
    }
  }

  return {
    get size() {
      return tickets.size;
    },

    async issue(principal, ttlMs) {
      if (!(Number.isFinite(ttlMs) && ttlMs > 0)) throw new RangeError(`A ticket's ttlMs must be a positive number of milliseconds; got ${String(ttlMs)}.`);
      const at = now();
      sweepIfDue(at);
      const ticket = Buffer.from(random(32)).toString('base64url');
      const expiresAt = at + ttlMs;
      // A copy, so later changes to the caller's object cannot change what the ticket grants, and
      // a principal that would not survive serialisation (a Redis store) fails here too.
      tickets.set(ticket, { principal: structuredClone(principal), expiresAt });
      return { ticket, expiresAt };
    },

    async redeem(ticket) {
      const at = now();
      sweepIfDue(at);
      if (!ticketPattern.test(ticket)) {
        throw new SluiceError('invalid_ticket', { message: 'The ticket is malformed: tickets are the 43-character value POST /api/tickets returned; pass it unchanged as ?ticket=.' });
      }
      const entry = tickets.get(ticket);
      // Deleted before any check, so two connections racing with one ticket cannot both win.
      tickets.delete(ticket);
      if (!entry) throw new SluiceError('invalid_ticket', { message: usedOrUnknown });
      if (entry.expiresAt <= at) {
        throw new SluiceError('invalid_ticket', { message: `The ticket expired at ${new Date(entry.expiresAt).toISOString()}; tickets live only seconds. Ask POST /api/tickets for a new one right before connecting.` });
      }
      return entry.principal;
    },

    async allowResume(ticket, principal, scope, untilMs) {
      sweepIfDue(now());
      resumable.set(ticket, { principal: structuredClone(principal), scope, expiresAt: untilMs });
    },

    async resume(ticket, scope) {
      const at = now();
      sweepIfDue(at);
      const entry = resumable.get(ticket);
      if (!entry || entry.scope !== scope || entry.expiresAt <= at) throw new SluiceError('invalid_ticket', { message: usedOrUnknown });
      return entry.principal;
    },
  };
}
