// GET /admin/usage: tokens and requests by user, key, model and day over a date range.
// `from` and `to` are UTC dates (YYYY-MM-DD), both inclusive; the default is the last 30 days.
import { z } from 'zod';
import type { UsageGroup, UsageQuery, UsageStore } from '../../store/store.js';
import { sendJson } from '../respond.js';
import type { RouteHandler } from '../router.js';
import { parseWith } from '../validate.js';
import { userIdSchema } from './limits-input.js';
import { usageRange } from '../../store/usage-range.js';

const groups = ['user', 'key', 'model', 'day'] as const satisfies readonly UsageGroup[];

export const usageQuerySchema = z.strictObject({
  from: z.iso.date({ error: 'must be a date such as 2026-12-01' }).optional(),
  to: z.iso.date({ error: 'must be a date such as 2026-12-31' }).optional(),
  groupBy: z
    .string()
    .regex(/^(user|key|model|day)(,(user|key|model|day))*$/, 'must be a comma-separated list of user, key, model, day')
    .optional(),
  userId: userIdSchema.optional(),
  keyId: z.string().min(1).max(64).optional(),
  model: z.string().min(1).max(256).optional(),
});

export function createAdminUsageRoute(dependencies: { usage: UsageStore; now: () => number }): RouteHandler {
  return async function adminUsage(context, _request, response) {
    const input = parseWith(usageQuerySchema, Object.fromEntries(context.query));
    const range = usageRange(input.from, input.to, dependencies.now());
    const groupBy = (input.groupBy?.split(',') ?? ['user', 'model', 'day']).filter((group): group is UsageGroup => (groups as readonly string[]).includes(group));
    const query: UsageQuery = {
      ...range.query,
      groupBy,
      ...(input.userId !== undefined ? { userId: input.userId } : {}),
      ...(input.keyId !== undefined ? { keyId: input.keyId } : {}),
      ...(input.model !== undefined ? { model: input.model } : {}),
    };
    const rows = await dependencies.usage.aggregate(query);
    sendJson(response, 200, { object: 'list', from: range.from, to: range.to, groupBy, data: rows });
  };
}
