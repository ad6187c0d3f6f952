// GET /v1/models, /healthz, /readyz and /metrics.
import type { RouteHandler } from '../router.js';
import type { ModelRouter } from '../../routing/model-router.js';
import type { Metrics } from '../../observability/metrics.js';
import { sendJson } from '../respond.js';
import { callerOf } from '../request-context.js';
import { isModelAllowed } from '../../auth/model-allowlist.js';

/** GET /v1/models: the models the caller may use (all of them unless its key or token lists some). */
export function createModelsRoute(router: ModelRouter): RouteHandler {
  return (context, _request, response) => {
    const { allowedModels } = callerOf(context);
    sendJson(response, 200, {
      object: 'list',
      data: router
        .list()
        .filter((model) => isModelAllowed(allowedModels, model.id))
        .map((model) => ({ id: model.id, object: 'model', created: 0, owned_by: model.provider })),
    });
  };
}

export const healthRoute: RouteHandler = (_context, _request, response) => {
  sendJson(response, 200, { status: 'ok' });
};

export function createReadyRoute(isReady: () => { ready: boolean; reason?: string }): RouteHandler {
  return (_context, _request, response) => {
    const state = isReady();
    sendJson(response, state.ready ? 200 : 503, state.ready ? { status: 'ready' } : { status: 'not-ready', reason: state.reason });
  };
}

export function createMetricsRoute(metrics: Metrics): RouteHandler {
  return async (_context, _request, response) => {
    const text = await metrics.registry.metrics();
    response.writeHead(200, { 'content-type': metrics.registry.contentType });
    response.end(text);
  };
}
