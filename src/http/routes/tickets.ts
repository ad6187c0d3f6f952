// POST /api/tickets: a short-lived, single-use ticket for the routes that browsers reach with
// EventSource or WebSocket, which cannot send an Authorization header. The long-lived key stays
// in the header of this one POST and never appears in a URL.
import { SluiceError } from '../../errors/sluice-error.js';
import type { TicketStore } from '../../auth/tickets.js';
import { callerOf } from '../request-context.js';
import type { RouteHandler } from '../router.js';
import { sendJson } from '../respond.js';

export function createTicketsRoute(options: { tickets: TicketStore; ttlMs: number }): RouteHandler {
  return async function issueTicket(context, _request, response) {
    const principal = callerOf(context);
    // A ticket buys one connection; it cannot be traded for another ticket, so a leaked one
    // stays worth one connection for at most ttlMs.
    if (principal.via === 'ticket') throw new SluiceError('forbidden', { message: 'A ticket cannot be exchanged for another ticket; authenticate with your key or token.' });
    const { ticket, expiresAt } = await options.tickets.issue(principal, options.ttlMs);
    sendJson(response, 201, { ticket, expiresAt: new Date(expiresAt).toISOString(), expiresInMs: options.ttlMs });
  };
}
