// GET /admin/requests: the request log, newest first. Each entry is one usage row (who, key,
// route, model, deployment, outcome, error code, timings, tokens, cost); the prompt
// and answer text are added only while the config says `log: { requests: true }` (docs/console.md).
import { z } from 'zod';
import { formatMicros } from '../../contract/cost.js';
import type { RequestLogStore, UsageOutcome, UsageRecord, UsageStore } from '../../store/store.js';
import { sendJson } from '../respond.js';
import type { RouteHandler } from '../router.js';
import { parseWith } from '../validate.js';
import { userIdSchema } from './limits-input.js';

/** The most entries one page may ask for. */
export const maxRequestLogLimit = 500;

const outcomes = ['completed', 'cancelled', 'error', 'refused'] as const satisfies readonly UsageOutcome[];
const dateTime = (example: string) => z.iso.datetime({ offset: true, error: `must be an ISO 8601 date-time such as ${example}` });

export const requestLogQuerySchema = z.strictObject({
  userId: userIdSchema.optional(),
  keyId: z.string().min(1).max(64).optional(),
  model: z.string().min(1).max(256).optional(),
  outcome: z.enum(outcomes, { error: `must be one of ${outcomes.join(', ')}` }).optional(),
  from: dateTime('2026-12-01T00:00:00Z').optional(),
  to: dateTime('2026-12-01T12:00:00Z').optional(),
  limit: z
    .string()
    .regex(/^\d{1,4}$/, `must be a whole number from 1 to ${maxRequestLogLimit.toString()}`)
    .transform(Number)
    .refine((limit) => limit >= 1 && limit <= maxRequestLogLimit, `must be a whole number from 1 to ${maxRequestLogLimit.toString()}`)
    .optional(),
});

export interface AdminRequestsDependencies {
  readonly usage: UsageStore;
  readonly requestLog: RequestLogStore;
  /** Read per request: config `log.requests`, which a reload may change. */
  readonly textLogged: () => boolean;
}

export function createAdminRequestsRoute(dependencies: AdminRequestsDependencies): RouteHandler {
  return async function adminRequests(context, _request, response) {
    const query = parseWith(requestLogQuerySchema, Object.fromEntries(context.query));
    const rows = await dependencies.usage.search({
      limit: query.limit ?? 100,
      ...(query.from !== undefined ? { from: Date.parse(query.from) } : {}),
      ...(query.to !== undefined ? { to: Date.parse(query.to) } : {}),
      ...(query.userId !== undefined ? { userId: query.userId } : {}),
      ...(query.keyId !== undefined ? { keyId: query.keyId } : {}),
      ...(query.model !== undefined ? { model: query.model } : {}),
      ...(query.outcome !== undefined ? { outcome: query.outcome } : {}),
    });
    const textLogged = dependencies.textLogged();
    const texts = textLogged ? await dependencies.requestLog.get(rows.flatMap((row) => (row.generationId !== undefined ? [row.generationId] : []))) : [];
    const textOf = new Map(texts.map((text) => [text.generationId, text]));
    sendJson(response, 200, {
      object: 'list',
      textLogged,
      data: rows.map((row) => {
        const text = row.generationId !== undefined ? textOf.get(row.generationId) : undefined;
        return { ...requestEntry(row), ...(text ? { prompt: text.prompt, answer: text.answer } : {}) };
      }),
    });
  };
}

/** One usage row as the request log shows it; absent values are null, so every entry has every field. */
function requestEntry(row: UsageRecord): Record<string, unknown> {
  return {
    time: new Date(row.at).toISOString(),
    generationId: row.generationId ?? null,
    userId: row.userId,
    keyId: row.keyId ?? null,
    route: row.route ?? null,
    model: row.model,
    provider: row.provider === '' ? null : row.provider,
    deployment: row.deployment ?? null,
    outcome: row.outcome,
    errorCode: row.errorCode ?? null,
    timeToFirstTokenMs: row.timeToFirstTokenMs ?? null,
    durationMs: row.durationMs,
    promptTokens: row.promptTokens,
    completionTokens: row.completionTokens,
    totalTokens: row.totalTokens,
    estimated: row.estimated,
    // The cost as a decimal string in its currency (docs/spend.md); null for a model with no price.
    cost: row.costMicros !== undefined ? formatMicros(row.costMicros) : null,
    currency: row.currency ?? null,
  };
}
