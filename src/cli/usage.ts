// `sluice usage`: the usage report of GET /admin/usage, read straight from the configured store.
import { parseArgs } from 'node:util';
import type { Store, UsageGroup } from '../store/store.js';
import { usageRange } from '../store/usage-range.js';
import { formatTable, type CliOutput } from './keys.js';

export const usageHelp = `Usage:
  sluice usage [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--by user,key,model,day]
               [--user U] [--key ID] [--model M] [--json]
Both dates are UTC and inclusive; the default is the last 30 days, grouped by user, model and day.`;

const groups: readonly UsageGroup[] = ['user', 'key', 'model', 'day'];

export async function usageCommand(args: string[], store: Store, io: CliOutput, now: () => number = Date.now): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { from: { type: 'string' }, to: { type: 'string' }, by: { type: 'string' }, user: { type: 'string' }, key: { type: 'string' }, model: { type: 'string' }, json: { type: 'boolean' } },
  });
  const by = (values.by ?? 'user,model,day').split(',').filter((group) => group !== '');
  const unknown = by.filter((group) => !(groups as readonly string[]).includes(group));
  if (unknown.length > 0) {
    io.err(`sluice usage: --by takes user, key, model and day; not ${unknown.join(', ')}\n`);
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
  const rows = await store.usage.aggregate({
    ...range.query,
    groupBy: by as UsageGroup[],
    ...(values.user !== undefined ? { userId: values.user } : {}),
    ...(values.key !== undefined ? { keyId: values.key } : {}),
    ...(values.model !== undefined ? { model: values.model } : {}),
  });
  if (values.json === true) {
    io.out(`${JSON.stringify({ from: range.from, to: range.to, groupBy: by, data: rows })}\n`);
    return 0;
  }
  io.out(`usage ${range.from} to ${range.to}\n`);
  const columns: Record<UsageGroup, 'userId' | 'keyId' | 'model' | 'day'> = { user: 'userId', key: 'keyId', model: 'model', day: 'day' };
  const header = [...by, 'requests', 'prompt', 'completion', 'total', 'estimated', 'cancelled', 'errors', 'refused'];
  const body = rows.map((row) => [
    ...by.map((group) => String(row[columns[group as UsageGroup]] ?? '')),
    String(row.requests),
    String(row.promptTokens),
    String(row.completionTokens),
    String(row.totalTokens),
    String(row.estimatedRequests),
    String(row.cancelled),
    String(row.errors),
    String(row.refused),
  ]);
  io.out(rows.length === 0 ? 'no usage in this range\n' : formatTable(header, body));
  return 0;
}
