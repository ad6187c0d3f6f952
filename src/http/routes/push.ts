// POST /api/push: a back end sends an event to some users' hub connections, or to everyone's.
// Service and admin credentials only (the app checks the role before this runs). The answer says
// how many connections the event reached; users who are not connected get it on their next
// connect with Last-Event-ID, within the retention window.
import { z } from 'zod';
import { SluiceError } from '../../errors/sluice-error.js';
import { isPushEventName, reservedPushEventNames, type Hub, type PushTarget } from '../../hub/hub.js';
import { readJsonBody } from '../request-body.js';
import { sendJson } from '../respond.js';
import type { RouteHandler } from '../router.js';
import { parseBody } from '../validate.js';
import { userIdSchema } from './limits-input.js';

/** Users one push may name. A broadcast (`to: { all: true }`) has no such limit. */
export const maxPushUsers = 1000;

/** The largest `data` a push may carry, as JSON text, in bytes (64 KiB). */
export const maxPushDataBytes = 64 * 1024;

export const pushBodySchema = z.strictObject({
  to: z
    .strictObject({
      users: z
        .array(userIdSchema, { error: 'must be a list of user ids' })
        .min(1, 'must name at least one user')
        .max(maxPushUsers, `may name at most ${maxPushUsers.toString()} users; push in batches, or to all`)
        .optional(),
      all: z.literal(true, { error: 'must be true (every connected user)' }).optional(),
    })
    .superRefine((to, issues) => {
      if ((to.users === undefined) === (to.all === undefined)) issues.addIssue({ code: 'custom', message: 'give exactly one of users: [user ids] or all: true' });
    }),
  event: z
    .string({ error: 'must be a string' })
    .regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1 to 64 characters of A-Z, a-z, 0-9 and . _ : -')
    .refine(isPushEventName, `is reserved for the gateway's own events (${reservedPushEventNames.join(', ')})`),
  // Any JSON value, null included; only a missing field is refused.
  data: z.unknown().refine((value) => value !== undefined, 'is required'),
});

export function createPushRoute(options: { hub: Hub; bodyLimitBytes: number }): RouteHandler {
  return async function push(_context, request, response) {
    const body = parseBody(pushBodySchema, await readJsonBody(request, options.bodyLimitBytes));
    const dataBytes = Buffer.byteLength(JSON.stringify(body.data));
    if (dataBytes > maxPushDataBytes) {
      throw new SluiceError('invalid_request', { param: 'data', message: `data: is ${dataBytes.toString()} bytes as JSON; a push carries at most ${maxPushDataBytes.toString()}. Send a reference and let the client fetch the rest.` });
    }
    const target: PushTarget = body.to.users !== undefined ? { users: body.to.users } : { all: true };
    const result = await options.hub.push(target, body.event, body.data);
    sendJson(response, 200, { id: result.id, connections: result.connections });
  };
}
