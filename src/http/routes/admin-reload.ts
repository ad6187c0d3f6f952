// POST /admin/reload: re-reads the config file and applies it to new requests, as SIGHUP does.
// A config with problems is refused whole: the answer lists every problem and the running config
// stays (docs/reload.md).
import type { ReloadOutcome } from '../../config/reload-plan.js';
import { ConfigError } from '../../config/load.js';
import { SluiceError } from '../../errors/sluice-error.js';
import { errorTable } from '../../errors/table.js';
import { sendJson } from '../respond.js';
import type { RouteHandler } from '../router.js';

export function createAdminReloadRoute(reload: () => ReloadOutcome): RouteHandler {
  return function adminReload(_context, _request, response) {
    let outcome: ReloadOutcome;
    try {
      outcome = reload();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      const refusal = new SluiceError('config_invalid', { message: error.message });
      // The OpenAI-style error body, with the problems as data too: { path, message } each.
      sendJson(response, refusal.status, { error: { message: refusal.message, type: errorTable.config_invalid.type, param: null, code: refusal.code }, issues: error.issues });
      return;
    }
    sendJson(response, 200, { reloaded: true, ...outcome });
  };
}
