// The hub's HTTP routes in one list, so the app registers them with one loop: the caller's event
// stream, push for back ends, and the connection list and disconnect for operators.
import type { Config } from '../../config/config.js';
import type { Hub } from '../../hub/hub.js';
import type { Logger } from '../../observability/logger.js';
import { createGenerationIdFactory } from '../../relay/generation-id.js';
import type { RouteHandler, RouteOptions } from '../router.js';
import { createDisconnectUserRoute, createListConnectionsRoute } from './connections.js';
import { createHubEventsRoute } from './hub-events.js';
import { createPushRoute } from './push.js';

export interface HubRoute {
  readonly method: string;
  readonly pattern: string;
  readonly handler: RouteHandler;
  readonly options: RouteOptions;
}

export interface HubRoutesDependencies {
  readonly hub: Hub;
  /** Reads server.heartbeatMs, server.maxBufferedBytes, server.bodyLimitBytes and hub.*. */
  readonly config: Pick<Config, 'server' | 'hub'>;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  readonly logger: Logger;
  /** Connection ids; default 16 characters of base64url from 96 random bits. */
  readonly createConnectionId?: () => string;
  /** In [0, 1), for the max-age jitter; default Math.random. */
  readonly random?: () => number;
}

/**
 * GET /api/events (any caller; `?ticket=` accepted, for EventSource), POST /api/push (service or
 * admin), GET /api/connections and DELETE /api/connections/:userId (admin).
 */
export function createHubRoutes(dependencies: HubRoutesDependencies): HubRoute[] {
  const { hub, config, now } = dependencies;
  const events = createHubEventsRoute({
    hub,
    heartbeatMs: config.server.heartbeatMs,
    maxBufferedBytes: config.server.maxBufferedBytes,
    maxConnectionAgeMs: config.hub.maxConnectionAgeMs,
    createConnectionId: dependencies.createConnectionId ?? createGenerationIdFactory(),
    logger: dependencies.logger,
    ...(dependencies.random ? { random: dependencies.random } : {}),
  });
  return [
    { method: 'GET', pattern: '/api/events', handler: events, options: { access: 'caller', tickets: true, writesRequestIdHeader: true } },
    { method: 'POST', pattern: '/api/push', handler: createPushRoute({ hub, bodyLimitBytes: config.server.bodyLimitBytes }), options: { access: 'service' } },
    { method: 'GET', pattern: '/api/connections', handler: createListConnectionsRoute({ hub, now }), options: { access: 'admin' } },
    { method: 'DELETE', pattern: '/api/connections/:userId', handler: createDisconnectUserRoute({ hub, now }), options: { access: 'admin' } },
  ];
}
