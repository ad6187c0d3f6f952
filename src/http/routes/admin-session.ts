// GET /admin/session: who the admin credential is, for the console's sign-in. A user or service
// credential never reaches this handler: the route's admin access refuses it with 403 `forbidden`
// naming the role, which the console shows as it is.
import type { Config } from '../../config/config.js';
import { callerOf } from '../request-context.js';
import { sendJson } from '../respond.js';
import type { RouteHandler } from '../router.js';

export function createAdminSessionRoute(dependencies: { readonly config: () => Pick<Config, 'log'>; readonly nodeId: string }): RouteHandler {
  return function adminSession(context, _request, response) {
    const principal = callerOf(context);
    sendJson(response, 200, {
      userId: principal.userId,
      role: principal.role,
      via: principal.via,
      keyId: principal.keyId ?? null,
      node: dependencies.nodeId,
      requestTextLogged: dependencies.config().log.requests,
    });
  };
}
