// `sluice keys create|list|revoke`: API keys straight in the configured store, for operators on
// the gateway's machine (the same as /admin/keys, without needing an admin key first).
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createKeyService } from '../auth/api-keys.js';
import { limitsWithBudgets, publicKey } from '../http/routes/admin-keys.js';
import { budgetSchema } from '../config/price.js';
import { formatMicros } from '../contract/cost.js';
import { limitsInputSchema, userIdSchema } from '../http/routes/limits-input.js';
import { modelPatternsSchema } from '../auth/model-allowlist.js';
import type { Store } from '../store/store.js';

export const keysHelp = `Usage:
  sluice keys create --user U --role user|service|admin [--name NAME] [--rpm N] [--tpm N]
                     [--concurrency N] [--daily-tokens N] [--monthly-tokens N] [--expires DATE|30d]
                     [--daily-budget AMOUNT] [--monthly-budget AMOUNT] [--models chat,spark-*,openai/*]
  sluice keys list [--user U] [--json]
  sluice keys revoke ID
--models limits the key to the model names matching these patterns (* matches anything); without
it the key may use every model, and list leaves its models column blank. Budgets (such as 5 or
0.25) are money per UTC day or month in the currency of the model's price (docs/spend.md).
All take --config FILE (or SLUICE_CONFIG) to find the store; SLUICE_STORE_URL overrides it.`;

export interface CliOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Runs one `keys` subcommand; returns the exit code. Errors in the arguments are exit 2. */
export async function keysCommand(args: string[], store: Store, io: CliOutput, now: () => number = Date.now): Promise<number> {
  const [action, ...rest] = args;
  switch (action) {
    case 'create':
      return createKey(rest, store, io, now);
    case 'list':
      return listKeys(rest, store, io);
    case 'revoke':
      return revokeKey(rest, store, io, now);
    default:
      io.err(`sluice keys: ${action === undefined ? 'name an action' : `unknown action "${action}"`}\n${keysHelp}\n`);
      return 2;
  }
}

const limitFlags = {
  rpm: 'requestsPerMinute',
  tpm: 'tokensPerMinute',
  concurrency: 'concurrentStreams',
  'daily-tokens': 'dailyTokens',
  'monthly-tokens': 'monthlyTokens',
} as const;

async function createKey(args: string[], store: Store, io: CliOutput, now: () => number): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      user: { type: 'string' },
      role: { type: 'string' },
      name: { type: 'string' },
      expires: { type: 'string' },
      models: { type: 'string' },
      'daily-budget': { type: 'string' },
      'monthly-budget': { type: 'string' },
      json: { type: 'boolean' },
      ...Object.fromEntries(Object.keys(limitFlags).map((flag) => [flag, { type: 'string' as const }])),
    },
  });
  const problems: string[] = [];
  const user = userIdSchema.safeParse(values.user);
  if (!user.success) problems.push(values.user === undefined ? '--user is required' : `--user ${user.error.issues[0]?.message ?? 'is invalid'}`);
  const role = z.enum(['user', 'service', 'admin']).safeParse(values.role);
  if (!role.success) problems.push('--role must be user, service or admin');
  const limits: Record<string, number> = {};
  for (const [flag, field] of Object.entries(limitFlags)) {
    const raw = (values as Record<string, string | boolean | undefined>)[flag];
    if (typeof raw !== 'string') continue;
    if (!/^\d+$/.test(raw) || Number(raw) <= 0) problems.push(`--${flag} must be a positive whole number, got "${raw}"`);
    else limits[field] = Number(raw);
  }
  const budgets: { dailyBudget?: number; monthlyBudget?: number } = {};
  for (const [flag, field] of [['daily-budget', 'dailyBudget'], ['monthly-budget', 'monthlyBudget']] as const) {
    const raw = values[flag];
    if (raw === undefined) continue;
    const parsed = budgetSchema.safeParse(/^\d+(\.\d+)?$/.test(raw) ? Number(raw) : Number.NaN);
    if (parsed.success) budgets[field] = parsed.data;
    else problems.push(`--${flag} must be an amount more than 0 with at most six decimals, such as 5 or 0.25, got "${raw}"`);
  }
  let expiresAt: number | undefined;
  if (values.expires !== undefined) {
    expiresAt = parseExpiry(values.expires, now());
    if (expiresAt === undefined) problems.push(`--expires must be a future date (2027-01-31), date-time, or a duration such as 30d or 12h, got "${values.expires}"`);
  }
  let models: string[] | undefined;
  if (values.models !== undefined) {
    const parsed = modelPatternsSchema.safeParse(values.models.split(',').map((pattern) => pattern.trim()));
    if (parsed.success) models = parsed.data;
    else problems.push(`--models ${parsed.error.issues[0]?.message ?? 'is invalid'}, got "${values.models}"`);
  }
  if (problems.length > 0 || !user.success || !role.success) {
    io.err(`sluice keys create:\n${problems.map((problem) => `  - ${problem}`).join('\n')}\n`);
    return 2;
  }
  const { key, record } = await createKeyService({ keys: store.keys, now }).create({
    userId: user.data,
    role: role.data,
    limits: limitsWithBudgets(limitsInputSchema.parse(limits), budgets),
    ...(models !== undefined ? { models } : {}),
    ...(values.name !== undefined ? { name: values.name } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  });
  if (values.json === true) io.out(`${JSON.stringify({ ...publicKey(record), key })}\n`);
  else io.out(`${key}\n\nid ${record.id}, user ${record.userId}, role ${record.role}. The key is shown only now; store it.\n`);
  return 0;
}

async function listKeys(args: string[], store: Store, io: CliOutput): Promise<number> {
  const { values } = parseArgs({ args, options: { user: { type: 'string' }, json: { type: 'boolean' } } });
  const records = await store.keys.list(values.user !== undefined ? { userId: values.user } : {});
  if (values.json === true) {
    io.out(`${JSON.stringify(records.map(publicKey))}\n`);
    return 0;
  }
  if (records.length === 0) {
    io.out('no keys\n');
    return 0;
  }
  const rows = records.map((record) => [
    record.id,
    record.userId,
    record.role,
    record.revokedAt !== undefined ? 'revoked' : record.expiresAt !== undefined && record.expiresAt <= Date.now() ? 'expired' : 'active',
    new Date(record.createdAt).toISOString().slice(0, 10),
    Object.entries(record.limits)
      .map(([name, value]: [string, number]) => (name.endsWith('BudgetMicros') ? `${name.replace('Micros', '')}=${formatMicros(value)}` : `${name}=${String(value)}`))
      .join(' ') || '-',
    // Blank for every model, like an unnamed key's name: a word there could be read as a pattern.
    record.models?.join(',') ?? '',
    record.name ?? '',
  ]);
  io.out(formatTable(['id', 'user', 'role', 'state', 'created', 'limits', 'models', 'name'], rows));
  return 0;
}

async function revokeKey(args: string[], store: Store, io: CliOutput, now: () => number): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  const id = positionals[0];
  if (id === undefined) {
    io.err('sluice keys revoke: name the key id (sluice keys list shows them)\n');
    return 2;
  }
  const existing = await store.keys.get(id);
  if (!existing) {
    io.err(`sluice keys revoke: no key with id "${id}"\n`);
    return 1;
  }
  if (!(await createKeyService({ keys: store.keys, now }).revoke(id))) {
    io.out(`key ${id} was already revoked\n`);
    return 0;
  }
  io.out(`revoked key ${id} (user ${existing.userId})\n`);
  return 0;
}

/** A date, a date-time, or `<n>d` / `<n>h` from now; undefined when invalid or not in the future. */
export function parseExpiry(text: string, now: number): number | undefined {
  const duration = /^(\d+)([dh])$/.exec(text);
  let at: number;
  if (duration) at = now + Number(duration[1]) * (duration[2] === 'd' ? 86_400_000 : 3_600_000);
  else if (/^\d{4}-\d{2}-\d{2}$/.test(text)) at = Date.parse(`${text}T00:00:00Z`);
  else at = Date.parse(text);
  return Number.isNaN(at) || at <= now ? undefined : at;
}

export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}
