// The usage and spend report shared by GET /admin/usage and `sluice usage`: aggregates with their
// cost written out in the currency's units next to the tokens, and the same rows as CSV for a
// spreadsheet (docs/spend.md).
import { formatMicros } from '../contract/cost.js';
import type { UsageAggregate, UsageGroup, UsageQuery, UsageStore } from './store.js';

/** The groups a report may be split by, in the order the docs list them. */
export const usageGroups: readonly UsageGroup[] = ['user', 'key', 'model', 'deployment', 'day'];

/** One row of the report: the aggregate, plus its cost as a decimal string (`0.001500`). */
export type UsageReportRow = UsageAggregate & { readonly cost: string };

export interface UsageReport {
  /** YYYY-MM-DD, inclusive. */
  readonly from: string;
  /** YYYY-MM-DD, inclusive. */
  readonly to: string;
  readonly groupBy: readonly UsageGroup[];
  readonly data: readonly UsageReportRow[];
}

/** Runs `query` and dresses its rows with their cost. */
export async function usageReport(usage: UsageStore, query: UsageQuery, range: { from: string; to: string }): Promise<UsageReport> {
  const rows = await usage.aggregate(query);
  return { from: range.from, to: range.to, groupBy: query.groupBy, data: rows.map((row) => ({ ...row, cost: formatMicros(row.costMicros) })) };
}

const groupColumns = { user: ['user_id', 'userId'], key: ['key_id', 'keyId'], model: ['model', 'model'], deployment: ['deployment', 'deployment'], day: ['day', 'day'] } as const satisfies Record<UsageGroup, readonly [string, keyof UsageAggregate]>;

const numberColumns = [
  ['requests', 'requests'],
  ['prompt_tokens', 'promptTokens'],
  ['completion_tokens', 'completionTokens'],
  ['total_tokens', 'totalTokens'],
  ['estimated_requests', 'estimatedRequests'],
  ['completed', 'completed'],
  ['cancelled', 'cancelled'],
  ['errors', 'errors'],
  ['refused', 'refused'],
  ['cost_micros', 'costMicros'],
] as const satisfies readonly (readonly [string, keyof UsageAggregate])[];

/**
 * The report as CSV (RFC 4180): a header line, then one line per row, CRLF line ends. Columns: the
 * groups, `currency`, `cost` (decimal), then the counts and `cost_micros`. Text cells go through
 * `csvCell`, so an id or model name can neither break the quoting nor run as a formula.
 */
export function usageReportCsv(report: UsageReport): string {
  const header = [...report.groupBy.map((group) => groupColumns[group][0]), 'currency', 'cost', ...numberColumns.map(([name]) => name)];
  const lines = report.data.map((row) => [
    ...report.groupBy.map((group) => csvCell(String(row[groupColumns[group][1]] ?? ''))),
    csvCell(row.currency ?? ''),
    row.cost,
    ...numberColumns.map(([, field]) => String(row[field])),
  ]);
  return [header, ...lines].map((cells) => `${cells.join(',')}\r\n`).join('');
}

/**
 * One text cell of CSV. A cell that a spreadsheet would read as a formula (starting with `=`, `+`,
 * `-`, `@`, a tab or a carriage return: OWASP's "CSV injection" list) gets a leading `'`, which
 * spreadsheets show as text; a user id such as `@admin` or a model name such as `=HYPERLINK(…)`
 * then stays text. A cell with a comma, a double quote, CR or LF is quoted, inner quotes doubled
 * (RFC 4180 section 2, rules 6 and 7).
 */
export function csvCell(text: string): string {
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}
