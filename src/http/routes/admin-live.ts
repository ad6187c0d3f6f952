// The console's Live view, as admin routes: hub connections by node and user (and closing a
// user's), a push to some users or everyone, and the generations running on this node (and
// cancelling one). Closing and pushing are the same handlers as DELETE /api/connections/:userId
// and POST /api/push, under /admin/ so the console talks to one family of routes.
import { z } from 'zod';
import { SluiceError } from '../../errors/sluice-error.js';
import type { Hub } from '../../hub/hub.js';
import type { GenerationRegistry } from '../../relay/generation-registry.js';
import type { GenerationService } from '../../relay/generation-service.js';
import { sendJson } from '../respond.js';
import type { RouteSpec } from '../router.js';
import { parseWith } from '../validate.js';
import { connectionView, createDisconnectUserRoute } from './connections.js';
import { userIdSchema } from './limits-input.js';
import { createPushRoute } from './push.js';

export interface AdminLiveDependencies {
  readonly hub: Hub;
  readonly generations: Pick<GenerationService, 'running' | 'active'>;
  readonly registry: Pick<GenerationRegistry, 'cancel'>;
  readonly bodyLimitBytes: number;
  readonly now: () => number;
}

const connectionsQuerySchema = z.strictObject({ userId: userIdSchema.optional() });
const generationParamsSchema = z.strictObject({ id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a generation id (letters, digits, - and _)') });

/**
 * GET /admin/connections → `{ data: [{ id, userId, transport, node, openedAt, ageMs }], nodes:
 * [{ node, total, users: [{ userId, connections }] }], total }`; DELETE /admin/connections/:userId;
 * POST /admin/push; GET /admin/generations → `{ node, data: [{ id, userId, keyId, model, route,
 * startedAt, ageMs, committed }] }`; POST /admin/generations/:id/cancel → `{ id, cancelled }`.
 */
export function createAdminLiveRoutes(dependencies: AdminLiveDependencies): RouteSpec[] {
  const { hub, now } = dependencies;
  return [
    {
      method: 'GET',
      pattern: '/admin/connections',
      options: { access: 'admin' },
      async handler(context, _request, response) {
        const query = parseWith(connectionsQuerySchema, Object.fromEntries(context.query));
        const connections = await hub.connections(query.userId);
        const at = now();
        const nodes = new Map<string, Map<string, number>>();
        for (const connection of connections) {
          const users = nodes.get(connection.node) ?? new Map<string, number>();
          users.set(connection.userId, (users.get(connection.userId) ?? 0) + 1);
          nodes.set(connection.node, users);
        }
        sendJson(response, 200, {
          total: connections.length,
          nodes: [...nodes.entries()]
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([node, users]) => ({
              node,
              total: [...users.values()].reduce((sum, count) => sum + count, 0),
              users: [...users.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([userId, count]) => ({ userId, connections: count })),
            })),
          data: connections.map((connection) => connectionView(connection, at)),
        });
      },
    },
    { method: 'DELETE', pattern: '/admin/connections/:userId', handler: createDisconnectUserRoute({ hub, now }), options: { access: 'admin' } },
    { method: 'POST', pattern: '/admin/push', handler: createPushRoute({ hub, bodyLimitBytes: dependencies.bodyLimitBytes }), options: { access: 'admin' } },
    {
      method: 'GET',
      pattern: '/admin/generations',
      options: { access: 'admin' },
      handler(_context, _request, response) {
        const at = now();
        const running = dependencies.generations.running().sort((a, b) => a.startedAt - b.startedAt);
        sendJson(response, 200, {
          node: hub.nodeId,
          data: running.map((generation) => ({
            id: generation.id,
            userId: generation.userId,
            keyId: generation.keyId ?? null,
            model: generation.model,
            route: generation.route ?? null,
            startedAt: new Date(generation.startedAt).toISOString(),
            ageMs: Math.max(0, at - generation.startedAt),
            committed: generation.committed,
          })),
        });
      },
    },
    {
      method: 'POST',
      pattern: '/admin/generations/:id/cancel',
      options: { access: 'admin' },
      async handler(_context, _request, response, params) {
        const { id } = parseWith(generationParamsSchema, params);
        const reason = new SluiceError('cancelled', { message: 'An operator cancelled the generation (POST /admin/generations/:id/cancel).' });
        const local = [...dependencies.generations.active].find((generation) => generation.id === id);
        let cancelled = false;
        if (local && !local.finished) {
          local.cancel(reason);
          cancelled = true;
        } else if (!local) {
          // Not running here: a resumable generation on another node is cancelled through the registry.
          cancelled = await dependencies.registry.cancel(id, reason);
          if (!cancelled) throw new SluiceError('not_found', { message: `No running generation with id "${id}".` });
        }
        sendJson(response, 200, { id, cancelled });
      },
    },
  ];
}
