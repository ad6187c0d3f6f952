// GET /admin/usage: requests, tokens and cost by user, key, model, deployment and day over a date
// range, as JSON or (`format=csv`) as a CSV download. `from` and `to` are UTC dates (YYYY-MM-DD),
// both inclusive; the default is the last 30 days. The report itself is store/usage-report.ts,
// shared with `sluice usage`.
import { z } from 'zod';
import type { UsageGroup, UsageQuery, UsageStore } from '../../store/store.js';
import { sendJson } from '../respond.js';
import type { RouteHandler } from '../router.js';
import { parseWith } from '../validate.js';
import { userIdSchema } from './limits-input.js';
import { usageRange } from '../../store/usage-range.js';
import { usageGroups, usageReport, usageReportCsv } from '../../store/usage-report.js';

const groupList = usageGroups.join('|');

export const usageQuerySchema = z.strictObject({
  from: z.iso.date({ error: 'must be a date such as 2026-12-01' }).optional(),
  to: z.iso.date({ error: 'must be a date such as 2026-12-31' }).optional(),
  groupBy: z
    .string()
    .regex(new RegExp(`^(${groupList})(,(${groupList}))*$`), `must be a comma-separated list of ${usageGroups.join(', ')}`)
    .optional(),
  userId: userIdSchema.optional(),
  keyId: z.string().min(1).max(64).optional(),
  model: z.string().min(1).max(256).optional(),
  format: z.enum(['json', 'csv'], { error: 'must be json or csv' }).optional(),
});

export function createAdminUsageRoute(dependencies: { usage: UsageStore; now: () => number }): RouteHandler {
  return async function adminUsage(context, _request, response) {
    const input = parseWith(usageQuerySchema, Object.fromEntries(context.query));
    const range = usageRange(input.from, input.to, dependencies.now());
    const groupBy = (input.groupBy?.split(',') ?? ['user', 'model', 'day']).filter((group): group is UsageGroup => (usageGroups as readonly string[]).includes(group));
    const query: UsageQuery = {
      ...range.query,
      groupBy: [...new Set(groupBy)],
      ...(input.userId !== undefined ? { userId: input.userId } : {}),
      ...(input.keyId !== undefined ? { keyId: input.keyId } : {}),
      ...(input.model !== undefined ? { model: input.model } : {}),
    };
    const report = await usageReport(dependencies.usage, query, range);
    if (input.format === 'csv') {
      const body = usageReportCsv(report);
      response.writeHead(200, {
        // header=present: RFC 4180 section 3's parameter for a first line of column names.
        'content-type': 'text/csv; charset=utf-8; header=present',
        'content-disposition': `attachment; filename="sluice-usage-${report.from}-to-${report.to}.csv"`,
        'content-length': Buffer.byteLength(body).toString(),
        'cache-control': 'no-store',
      });
      response.end(body);
      return;
    }
    sendJson(response, 200, { object: 'list', ...report });
  };
}
