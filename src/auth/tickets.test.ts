import { beforeEach, describe, expect, it } from 'vitest';
import { SluiceError } from '../errors/sluice-error.js';
import type { Principal } from './principal.js';
import { createMemoryTicketStore, type MemoryTicketStore } from './tickets.js';

async function rejectionOf(promise: Promise<unknown>): Promise<SluiceError> {
  const error: unknown = await promise.then(() => undefined, (reason: unknown) => reason);
  if (!(error instanceof SluiceError)) throw new Error(`expected a SluiceError, got ${String(error)}`);
  return error;
}

const alice: Principal = { userId: 'alice', role: 'service', via: 'key', keyId: 'abcdefghijkl', keyLimits: { concurrentStreams: 2 } };
const start = Date.UTC(2025, 0, 1);
let nowMs = start;
let tickets: MemoryTicketStore;

beforeEach(() => {
  nowMs = start;
  tickets = createMemoryTicketStore({ now: () => nowMs, sweepIntervalMs: 10_000 });
});

describe('memory ticket store', () => {
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

  it('sweeps expired tickets nobody redeemed, so memory stays bounded', async () => {
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

  it('refuses a ttl that is not a positive number', async () => {
    await expect(tickets.issue(alice, 0)).rejects.toThrow(RangeError);
    await expect(tickets.issue(alice, Number.NaN)).rejects.toThrow(RangeError);
  });
});

describe('resuming with a spent ticket', () => {
  it('reopens only the stream the ticket opened, only until the grant ends', async () => {
    let at = 1_000_000;
    const store = createMemoryTicketStore({ now: () => at });
    const principal = { userId: 'alice', role: 'user' as const, via: 'ticket' as const, keyLimits: {} };
    const { ticket } = await store.issue(principal, 60_000);
    await store.redeem(ticket);
    await expect(store.redeem(ticket)).rejects.toMatchObject({ code: 'invalid_ticket' });
    await expect(store.resume(ticket, 'gen-1')).rejects.toMatchObject({ code: 'invalid_ticket' });
    await store.allowResume(ticket, principal, 'gen-1', at + 5000);
    await expect(store.resume(ticket, 'gen-1')).resolves.toEqual(principal);
    await expect(store.resume(ticket, 'gen-1')).resolves.toEqual(principal);
    await expect(store.resume(ticket, 'gen-2')).rejects.toMatchObject({ code: 'invalid_ticket' });
    // A grant is no ticket: it opens nothing new.
    await expect(store.redeem(ticket)).rejects.toMatchObject({ code: 'invalid_ticket' });
    at += 5000;
    await expect(store.resume(ticket, 'gen-1')).rejects.toMatchObject({ code: 'invalid_ticket' });
  });
});
