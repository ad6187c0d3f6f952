// GET /admin/deployments: every pool deployment with its health (state, cooldown, in flight), the
// figures this node saw over the last minutes (requests, errors by code, latency and time to first
// token p50/p95) and its keys by id, never by secret. POST /admin/deployments/:id/reset forgets
// the failures of a deployment (`provider/model`) or a key (`provider#N`), URL-encoded in the path:
// a key refused with 401/403 stays out until then (docs/pools.md).
import { SluiceError } from '../../errors/sluice-error.js';
import type { ModelRouter } from '../../routing/model-router.js';
import type { UpstreamPools } from '../../routing/upstream-pools.js';
import { sendJson } from '../respond.js';
import type { RouteSpec } from '../router.js';

export interface AdminDeploymentsDependencies {
  readonly modelRouter: ModelRouter;
  readonly pools: UpstreamPools;
}

export function createAdminDeploymentsRoutes(dependencies: AdminDeploymentsDependencies): RouteSpec[] {
  const { modelRouter, pools } = dependencies;
  return [
    {
      method: 'GET',
      pattern: '/admin/deployments',
      options: { access: 'admin' },
      handler: async (_context, _request, response) => {
        sendJson(response, 200, { object: 'list', data: await pools.describe(modelRouter.pools()) });
      },
    },
    {
      method: 'POST',
      pattern: '/admin/deployments/:id/reset',
      options: { access: 'admin' },
      handler: async (_context, _request, response, params) => {
        const id = params['id'] ?? '';
        const known = modelRouter.pools().some((pool) => pool.deployments.some((deployment) => deployment.id === id || deployment.keys.some((key) => key.id === id)));
        if (!known) {
          throw new SluiceError('deployment_not_found', {
            param: 'id',
            message: `No deployment or key "${id}"; use a deployment id (provider/model) or a key id (provider#N) from GET /admin/deployments, URL-encoded.`,
          });
        }
        await pools.reset(id);
        sendJson(response, 200, { id, reset: true });
      },
    },
  ];
}
