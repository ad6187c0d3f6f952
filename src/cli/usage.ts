// `sluice usage`: the usage and spend report of GET /admin/usage, read straight from the
// configured store; a table, JSON (--json) or CSV (--csv).
import { parseArgs } from 'node:util';
import type { Store, UsageGroup } from '../store/store.js';
import { usageRange } from '../store/usage-range.js';
import { usageGroups, usageReport, usageReportCsv } from '../store/usage-report.js';
import { formatTable, type CliOutput } from './keys.js';

export const usageHelp = `Usage:
  sluice usage [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--by user,key,model,deployment,day]
               [--user U] [--key ID] [--model M] [--json | --csv]
Both dates are UTC and inclusive; the default is the last 30 days, grouped by user, model and day.
Cost is in the currency of each model's price; rows of different currencies are never summed.`;

const columns = { user: 'userId', key: 'keyId', model: 'model', deployment: 'deployment', day: 'day' } as const satisfies Record<UsageGroup, string>;

export async function usageCommand(args: string[], store: Store, io: CliOutput, now: () => number = Date.now): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { from: { type: 'string' }, to: { type: 'string' }, by: { type: 'string' }, user: { type: 'string' }, key: { type: 'string' }, model: { type: 'string' }, json: { type: 'boolean' }, csv: { type: 'boolean' } },
  });
  const by = [...new Set((values.by ?? 'user,model,day').split(',').filter((group) => group !== ''))];
  const unknown = by.filter((group) => !(usageGroups as readonly string[]).includes(group));
  if (unknown.length > 0) {
    io.err(`sluice usage: --by takes ${usageGroups.join(', ')}; not ${unknown.join(', ')}\n`);
    return 2;
  }
  if (values.json === true && values.csv === true) {
    io.err('sluice usage: give --json or --csv, not both\n');
    return 2;
  }
  for (const [flag, value] of [['from', values.from], ['to', values.to]] as const) {
    if (value !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(value)) {
      io.err(`sluice usage: --${flag} must be a date such as 2026-12-01, got "${value}"\n`);
      return 2;
    }
  }
  let range;
  try {
    range = usageRange(values.from, values.to, now());
  } catch (error) {
    io.err(`sluice usage: ${(error as Error).message}\n`);
    return 2;
  }
  const groupBy = by as UsageGroup[];
  const report = await usageReport(
    store.usage,
    {
      ...range.query,
      groupBy,
      ...(values.user !== undefined ? { userId: values.user } : {}),
      ...(values.key !== undefined ? { keyId: values.key } : {}),
      ...(values.model !== undefined ? { model: values.model } : {}),
    },
    range,
  );
  if (values.json === true) {
    io.out(`${JSON.stringify(report)}\n`);
    return 0;
  }
  if (values.csv === true) {
    io.out(usageReportCsv(report));
    return 0;
  }
  io.out(`usage ${range.from} to ${range.to}\n`);
  const header = [...groupBy, 'requests', 'prompt', 'completion', 'total', 'estimated', 'cancelled', 'errors', 'refused', 'cost'];
  const body = report.data.map((row) => [
    ...groupBy.map((group) => String(row[columns[group]] ?? '')),
    String(row.requests),
    String(row.promptTokens),
    String(row.completionTokens),
    String(row.totalTokens),
    String(row.estimatedRequests),
    String(row.cancelled),
    String(row.errors),
    String(row.refused),
    row.currency !== undefined ? `${row.cost} ${row.currency}` : '-',
  ]);
  io.out(report.data.length === 0 ? 'no usage in this range\n' : formatTable(header, body));
  return 0;
}
