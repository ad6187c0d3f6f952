// GET /api/connections and DELETE /api/connections/:userId: what an operator sees of the hub (who
// is connected, how, on which node, for how long) and the one thing they can do to it: close
// every connection a user has. Admin credentials only (the app checks the role before these run).
import { z } from 'zod';
import type { ConnectionInfo, Hub } from '../../hub/hub.js';
import { sendJson } from '../respond.js';
import type { RouteHandler } from '../router.js';
import { parseWith } from '../validate.js';
import { userIdSchema } from './limits-input.js';

const listQuerySchema = z.strictObject({ userId: userIdSchema.optional() });
const userParamsSchema = z.strictObject({ userId: userIdSchema });

export interface ConnectionsRoutesOptions {
  readonly hub: Hub;
  /** Milliseconds since the epoch, for each connection's age. */
  readonly now: () => number;
}

/**
 * GET /api/connections[?userId=]: `{ data: [{ id, userId, transport, node, openedAt, ageMs }],
 * counts: { total, byUser } }`, oldest first. `openedAt` is ISO 8601; `counts` covers everyone,
 * whatever the filter.
 */
export function createListConnectionsRoute(options: ConnectionsRoutesOptions): RouteHandler {
  return async function listConnections(context, _request, response) {
    const query = parseWith(listQuerySchema, Object.fromEntries(context.query));
    const [connections, counts] = await Promise.all([options.hub.connections(query.userId), options.hub.counts()]);
    const at = options.now();
    sendJson(response, 200, {
      data: connections.map((connection) => connectionView(connection, at)),
      counts,
    });
  };
}

/**
 * DELETE /api/connections/:userId: closes all of the user's connections → `{ userId, closed }`.
 * SSE streams end with a `close` event saying not to reconnect. Closing does not revoke the
 * user's credential: revoke the key first to keep them out.
 */
export function createDisconnectUserRoute(options: ConnectionsRoutesOptions): RouteHandler {
  return async function disconnectUser(_context, _request, response, params) {
    const { userId } = parseWith(userParamsSchema, params);
    const closed = await options.hub.disconnect(userId);
    sendJson(response, 200, { userId, closed });
  };
}

/** A hub connection as the admin routes show it (GET /api/connections, GET /admin/connections). */
export function connectionView(connection: ConnectionInfo, at: number): { id: string; userId: string; transport: string; node: string; openedAt: string; ageMs: number } {
  return {
    id: connection.id,
    userId: connection.userId,
    transport: connection.transport,
    node: connection.node,
    openedAt: new Date(connection.openedAt).toISOString(),
    ageMs: Math.max(0, at - connection.openedAt),
  };
}
