// /admin/keys: create (the secret is in this one answer and nowhere else), list, revoke. Admin
// credentials only (the app checks the role before these run).
import { z } from 'zod';
import { SluiceError } from '../../errors/sluice-error.js';
import type { KeyService } from '../../auth/api-keys.js';
import type { ApiKeyRecord, KeyStore } from '../../store/store.js';
import { readJsonBody } from '../request-body.js';
import { sendJson } from '../respond.js';
import type { RouteHandler } from '../router.js';
import { parseBody, parseWith } from '../validate.js';
import { limitsInputSchema, userIdSchema } from './limits-input.js';
import { modelPatternsSchema } from '../../auth/model-allowlist.js';
import { budgetMicros, budgetSchema } from '../../config/price.js';
import { countingLimits, type Limits } from '../../contract/principal.js';

export const createKeyBodySchema = z.strictObject({
  userId: userIdSchema,
  role: z.enum(['user', 'service', 'admin'], { error: 'must be one of user, service, admin' }),
  name: z.string().min(1).max(200).optional(),
  limits: limitsInputSchema.optional(),
  /** Money per UTC day, in the currency of the requested model's price (docs/spend.md). */
  dailyBudget: budgetSchema.optional(),
  /** Money per UTC month, likewise. */
  monthlyBudget: budgetSchema.optional(),
  /** Model patterns the key may use (`chat`, `spark-*`, `openai/*`); absent: every model. */
  models: modelPatternsSchema.optional(),
  /** An ISO 8601 date or date-time, in the future. */
  expiresAt: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time such as 2027-01-31T00:00:00Z' }).or(z.iso.date({ error: 'must be an ISO 8601 date such as 2027-01-31' })).optional(),
});

/** A key as the admin API and the CLI show it: never the hash, never the secret. */
export function publicKey(record: ApiKeyRecord): Record<string, unknown> {
  return {
    id: record.id,
    userId: record.userId,
    role: record.role,
    name: record.name ?? null,
    limits: countingLimits(record.limits),
    dailyBudget: record.limits.dailyBudgetMicros === undefined ? null : record.limits.dailyBudgetMicros / 1_000_000,
    monthlyBudget: record.limits.monthlyBudgetMicros === undefined ? null : record.limits.monthlyBudgetMicros / 1_000_000,
    models: record.models ?? null,
    createdAt: new Date(record.createdAt).toISOString(),
    expiresAt: record.expiresAt === undefined ? null : new Date(record.expiresAt).toISOString(),
    revokedAt: record.revokedAt === undefined ? null : new Date(record.revokedAt).toISOString(),
  };
}


/** A key's limits with its budgets in micro-units, as the store and the limiter hold them. */
export function limitsWithBudgets(limits: Limits | undefined, budgets: { dailyBudget?: number | undefined; monthlyBudget?: number | undefined }): Limits {
  return {
    ...limits,
    ...(budgets.dailyBudget !== undefined ? { dailyBudgetMicros: budgetMicros(budgets.dailyBudget) } : {}),
    ...(budgets.monthlyBudget !== undefined ? { monthlyBudgetMicros: budgetMicros(budgets.monthlyBudget) } : {}),
  };
}

interface KeyRoute {
  method: string;
  pattern: string;
  handler: RouteHandler;
}

export function createAdminKeysRoutes(dependencies: { keys: KeyService; store: KeyStore; bodyLimitBytes: number; now: () => number }): KeyRoute[] {
  const { keys, store } = dependencies;

  const create: RouteHandler = async (_context, request, response) => {
    const body = parseBody(createKeyBodySchema, await readJsonBody(request, dependencies.bodyLimitBytes));
    let expiresAt: number | undefined;
    if (body.expiresAt !== undefined) {
      expiresAt = Date.parse(body.expiresAt);
      if (expiresAt <= dependencies.now()) throw new SluiceError('invalid_request', { param: 'expiresAt', message: 'expiresAt: must be in the future.' });
    }
    const { key, record } = await keys.create({
      userId: body.userId,
      role: body.role,
      ...(body.name !== undefined ? { name: body.name } : {}),
      limits: limitsWithBudgets(body.limits, body),
      ...(body.models !== undefined ? { models: body.models } : {}),
      ...(expiresAt !== undefined ? { expiresAt } : {}),
    });
    sendJson(response, 201, { ...publicKey(record), key, note: 'The key is shown only in this answer; store it now.' });
  };

  const list: RouteHandler = async (context, _request, response) => {
    const query = parseWith(z.strictObject({ userId: userIdSchema.optional() }), Object.fromEntries(context.query));
    const records = await store.list(query.userId !== undefined ? { userId: query.userId } : {});
    sendJson(response, 200, { object: 'list', data: records.map(publicKey) });
  };

  const revoke: RouteHandler = async (_context, _request, response, params) => {
    const id = params['id'] ?? '';
    const existing = await store.get(id);
    if (!existing) throw new SluiceError('not_found', { message: `No API key with id "${id}".` });
    if (existing.revokedAt !== undefined) {
      sendJson(response, 200, { ...publicKey(existing), revoked: true, note: 'The key was already revoked.' });
      return;
    }
    await keys.revoke(id);
    const revoked = await store.get(id);
    sendJson(response, 200, { ...(revoked ? publicKey(revoked) : { id }), revoked: true });
  };

  return [
    { method: 'POST', pattern: '/admin/keys', handler: create },
    { method: 'GET', pattern: '/admin/keys', handler: list },
    { method: 'DELETE', pattern: '/admin/keys/:id', handler: revoke },
  ];
}
