// Tickets are single use, but EventSource reopens the very URL it was given, spent ticket and all,
// with Last-Event-ID. So a ticket that opened a stream is granted the right to reopen that stream,
// and nothing else: the generation it started (native chat), or the hub channel.
import { SluiceError } from '../errors/sluice-error.js';
import type { Principal } from '../contract/principal.js';
import type { TicketStore } from '../auth/tickets.js';
import { isPushId } from '../hub/hub.js';
import type { Logger } from '../observability/logger.js';
import { parseNativeEventId } from '../relay/encoders/native-events.js';

/** The hub channel's route name (and the scope of its grants). */
export const hubEventsRoute = '/api/events';

/** How long past its retention a spent ticket may still reopen the generation it started. */
const resumeGrantMs = 3_600_000;

/** How long a ticket that opened the hub channel may reopen it: a working day of reconnects. */
const hubResumeGrantMs = 12 * 3_600_000;

export interface ResumeGrantsDependencies {
  readonly tickets: TicketStore;
  readonly logger: Logger;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  /** How long a finished generation stays attachable (generations.retentionMs). */
  readonly generationRetentionMs: number;
}

export interface ResumeGrants {
  /** The ticket started this generation: it may reopen it for as long as it can be resumed. */
  grantGeneration(ticket: string, principal: Principal, generationId: string): void;
  /**
   * A ticket authenticated a request for `route`. The hub channel is one long-lived stream that
   * EventSource reopens with the same URL (after hub.maxConnectionAgeMs, or a network drop): its
   * ticket may reopen it, and only it.
   */
  grantRoute(ticket: string, principal: Principal, route: string): void;
  /**
   * Authentication failed with `error`: when it is a spent ticket on a request that carries a
   * Last-Event-ID for what that ticket was granted, resolves to the ticket's principal; otherwise
   * rejects with `error` as it was.
   */
  reopen(error: unknown, ticket: string | undefined, route: string, lastEventId: string | undefined): Promise<Principal>;
}

export function createResumeGrants(dependencies: ResumeGrantsDependencies): ResumeGrants {
  const { tickets, logger, now } = dependencies;

  /** Records a grant in the background; a failure (Redis down) only costs that reconnect. */
  function grant(ticket: string, principal: Principal, scope: string, untilMs: number): void {
    tickets.allowResume(ticket, principal, scope, untilMs).catch((error: unknown) => logger.warn({ err: error }, 'tickets: could not record a resume grant'));
  }

  return {
    grantGeneration(ticket, principal, generationId) {
      grant(ticket, principal, generationId, now() + dependencies.generationRetentionMs + resumeGrantMs);
    },
    grantRoute(ticket, principal, route) {
      if (route === hubEventsRoute) grant(ticket, principal, hubEventsRoute, now() + hubResumeGrantMs);
    },
    async reopen(error, ticket, route, lastEventId) {
      if (!(error instanceof SluiceError) || error.code !== 'invalid_ticket' || ticket === undefined || lastEventId === undefined) throw error;
      const scope = route === hubEventsRoute ? (isPushId(lastEventId) ? hubEventsRoute : undefined) : parseNativeEventId(lastEventId)?.generationId;
      if (scope === undefined) throw error;
      return tickets.resume(ticket, scope).catch(() => Promise.reject(error));
    },
  };
}
