// The one Store implementation, written once in kysely's query builder and run on SQLite or
// PostgreSQL. Everything that differs between the two lives in create-store.ts (the connection)
// and migrations.ts (one column type); the queries here are portable SQL.
import { CompiledQuery, sql, type Kysely, type RawBuilder, type Selectable } from 'kysely';
import { countingLimits, limitNames, roles, type Limits, type Role } from '../contract/principal.js';
import type { ApiKeysTable, ConversationMessagesTable, ConversationsTable, Database, ResponsesTable, UsageTable } from './database.js';
import { ttftBinBoundsMs } from './store.js';
import { postgresSetupLockKey, type StoreKind } from './migrations.js';
import type {
  ApiKeyRecord,
  ConversationMessage,
  ConversationRecord,
  ConversationStore,
  KeyStore,
  MessageStatus,
  ResponseRecord,
  ResponseStatus,
  ProviderUsageStats,
  RequestLogStore,
  RequestText,
  ResponseStore,
  Store,
  UsageAggregate,
  UsageGroup,
  UsageOutcome,
  UsageQuery,
  UsageRecord,
  UsageStore,
  UsageTimeline,
  UsageTimelineQuery,
} from './store.js';

const dayMs = 86_400_000;
const messageRoles: readonly ConversationMessage['role'][] = ['system', 'user', 'assistant'];
const messageStatuses: readonly MessageStatus[] = ['complete', 'cancelled', 'error'];

/**
 * Wraps an open, migrated kysely instance as a Store. `close` destroys the kysely instance (and so
 * the SQLite handle or the pg pool); calling it again does nothing.
 */
export function createSqlStore(db: Kysely<Database>, kind: StoreKind): Store {
  let closing: Promise<void> | undefined;
  return {
    kind,
    keys: createKeyStore(db, kind),
    usage: createUsageStore(db),
    conversations: createConversationStore(db),
    responses: createResponseStore(db),
    requestLog: createRequestLogStore(db),
    async ping() {
      try {
        await sql`select 1`.execute(db);
        return true;
      } catch {
        return false;
      }
    },
    close() {
      closing ??= db.destroy();
      return closing;
    },
  };
}

function apiKeyValues(record: ApiKeyRecord) {
  return {
    id: record.id,
    user_id: record.userId,
    role: record.role,
    name: record.name ?? null,
    secret_hash: record.secretHash,
    // Budgets have columns of their own (migration 0004); the JSON keeps the counting limits.
    limits: JSON.stringify(countingLimits(record.limits)),
    daily_budget_micros: record.limits.dailyBudgetMicros ?? null,
    monthly_budget_micros: record.limits.monthlyBudgetMicros ?? null,
    models: record.models !== undefined ? JSON.stringify(record.models) : null,
    created_at: record.createdAt,
    expires_at: record.expiresAt ?? null,
    revoked_at: record.revokedAt ?? null,
  };
}

function createKeyStore(db: Kysely<Database>, kind: StoreKind): KeyStore {
  return {
    async create(record) {
      await db.insertInto('api_keys').values(apiKeyValues(record)).execute();
    },
    async createIfEmpty(record) {
      const transaction = await db.startTransaction().execute();
      try {
        // PostgreSQL (READ COMMITTED): without the lock two nodes would each insert their own key
        // and each count only its own uncommitted row. SQLite needs none: the insert below is the
        // transaction's first statement, so it takes the database's one write lock (waiting out
        // busy_timeout for another process) before anything is read.
        if (kind === 'postgres') await sql`select pg_advisory_xact_lock(${sql.lit(postgresSetupLockKey)})`.execute(transaction);
        // A node racing with the same SLUICE_ADMIN_KEY has the same id: no duplicate-key error.
        const inserted = await transaction
          .insertInto('api_keys')
          .values(apiKeyValues(record))
          .onConflict((conflict) => conflict.column('id').doNothing())
          .executeTakeFirst();
        const { count } = await transaction
          .selectFrom('api_keys')
          .select((expression) => expression.fn.countAll<number>().as('count'))
          .executeTakeFirstOrThrow();
        if (inserted.numInsertedOrUpdatedRows === 1n && count === 1) {
          await transaction.commit().execute();
          return true;
        }
      } catch (error) {
        await transaction.rollback().execute().catch(() => {});
        throw error;
      }
      await transaction.rollback().execute();
      return false;
    },
    async get(id) {
      const row = await db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : toApiKeyRecord(row);
    },
    async list(filter) {
      let query = db.selectFrom('api_keys').selectAll();
      if (filter?.userId !== undefined) query = query.where('user_id', '=', filter.userId);
      // id breaks ties so keys made in the same millisecond list in a stable order.
      const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
      return rows.map(toApiKeyRecord);
    },
    async revoke(id, at) {
      // One conditional update, so two concurrent revokes cannot both report success.
      const result = await db
        .updateTable('api_keys')
        .set({ revoked_at: at })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },
    async count() {
      const row = await db
        .selectFrom('api_keys')
        .select((expression) => expression.fn.countAll<number>().as('count'))
        .executeTakeFirstOrThrow();
      return row.count;
    },
  };
}

/** A row with every column set (none null), for compiling the INSERT: its values are replaced. */
const sampleUsageRecord: Required<UsageRecord> = {
  at: 0,
  userId: '',
  keyId: '',
  generationId: '',
  provider: '',
  model: '',
  upstreamModel: '',
  promptTokens: 0,
  completionTokens: 0,
  totalTokens: 0,
  estimated: false,
  timeToFirstTokenMs: 0,
  durationMs: 0,
  outcome: 'completed',
  errorCode: '',
  route: '',
  deployment: '',
  providerKeyId: '',
  attempts: 0,
  costMicros: 0,
  currency: '',
};

function usageValues(row: UsageRecord) {
  return {
    at: row.at,
    user_id: row.userId,
    key_id: row.keyId ?? null,
    generation_id: row.generationId ?? null,
    provider: row.provider,
    model: row.model,
    upstream_model: row.upstreamModel ?? null,
    prompt_tokens: row.promptTokens,
    completion_tokens: row.completionTokens,
    total_tokens: row.totalTokens,
    estimated: row.estimated ? 1 : 0,
    time_to_first_token_ms: row.timeToFirstTokenMs ?? null,
    duration_ms: row.durationMs,
    outcome: row.outcome,
    error_code: row.errorCode ?? null,
    route: row.route ?? null,
    deployment: row.deployment ?? null,
    provider_key_id: row.providerKeyId ?? null,
    attempts: row.attempts ?? null,
    cost_micros: row.costMicros ?? null,
    currency: row.currency ?? null,
  };
}

/** Batches of up to this many rows reuse a compiled INSERT (the usage writer's batches are at most 200). */
const maxCompiledUsageRows = 256;

function createUsageStore(db: Kysely<Database>): UsageStore {
  // The INSERT of n rows, compiled once per n: building and compiling it through kysely's query
  // builder for every batch cost about 1% of a non-streamed request's CPU
  // (docs/decisions/0025-per-request-path.md). Its parameters are every row's values in column
  // order, so only they are made per batch. Only the SQL text is kept: a compiled query also holds
  // the query's syntax tree, a node per value, which for every batch size up to 256 rows came to
  // megabytes held for good.
  const insertSql = new Map<number, string>();
  const columns = Object.keys(usageValues(sampleUsageRecord)) as (keyof ReturnType<typeof usageValues>)[];

  function insertOf(count: number, parameters: unknown[]): CompiledQuery {
    let text = insertSql.get(count);
    if (text === undefined) {
      const compiled = db.insertInto('usage').values(Array.from({ length: count }, () => usageValues(sampleUsageRecord))).compile();
      if (compiled.parameters.length !== count * columns.length) throw new Error('The usage INSERT does not take one parameter per column and row.');
      text = compiled.sql;
      if (count <= maxCompiledUsageRows) insertSql.set(count, text);
    }
    return CompiledQuery.raw(text, parameters);
  }

  async function insert(rows: readonly UsageRecord[]): Promise<void> {
    const parameters: unknown[] = [];
    for (const row of rows) {
      const values = usageValues(row);
      for (const column of columns) parameters.push(values[column]);
    }
    await db.executeQuery(insertOf(rows.length, parameters));
  }

  return {
    async record(row) {
      await insert([row]);
    },
    async recordMany(rows) {
      if (rows.length === 0) return;
      // One statement, one transaction: a batch costs one commit instead of one per row.
      await insert(rows);
    },
    aggregate: (query) => aggregateUsage(db, query),
    async recent(query) {
      let select = db.selectFrom('usage').selectAll();
      if (query.userId !== undefined) select = select.where('user_id', '=', query.userId);
      // id breaks ties between rows of the same millisecond: the later insert first.
      const rows = await select.orderBy('at', 'desc').orderBy('id', 'desc').limit(Math.max(0, query.limit)).execute();
      return rows.map(toUsageRecord);
    },
    async search(query) {
      const rows = await db
        .selectFrom('usage')
        .selectAll()
        .where((expression) => {
          const filters = [];
          if (query.from !== undefined) filters.push(expression('at', '>=', query.from));
          if (query.to !== undefined) filters.push(expression('at', '<', query.to));
          if (query.userId !== undefined) filters.push(expression('user_id', '=', query.userId));
          if (query.keyId !== undefined) filters.push(expression('key_id', '=', query.keyId));
          if (query.model !== undefined) filters.push(expression('model', '=', query.model));
          if (query.outcome !== undefined) filters.push(expression('outcome', '=', query.outcome));
          return expression.and(filters);
        })
        .orderBy('at', 'desc')
        .orderBy('id', 'desc')
        .limit(Math.max(0, query.limit))
        .execute();
      return rows.map(toUsageRecord);
    },
    timeline: (query) => usageTimeline(db, query),
    async providerStats(range) {
      const rows = await db
        .selectFrom('usage')
        .select([
          'provider',
          sql<number>`count(*)`.as('requests'),
          countWhereOutcome('error').as('errors'),
          sql<number | null>`avg(time_to_first_token_ms)`.as('mean_ttft'),
          sql<number>`avg(duration_ms)`.as('mean_duration'),
          sql<number | null>`max(case when outcome = 'error' then at end)`.as('last_error_at'),
        ])
        .where('at', '>=', range.from)
        .where('at', '<', range.to)
        .where('provider', '<>', '')
        .groupBy('provider')
        .orderBy('provider')
        .execute();
      const stats: ProviderUsageStats[] = [];
      for (const row of rows) {
        const lastErrorAt = row.last_error_at === null ? null : Number(row.last_error_at);
        const last =
          lastErrorAt === null
            ? undefined
            : await db.selectFrom('usage').select('error_code').where('provider', '=', row.provider).where('at', '=', lastErrorAt).where('outcome', '=', 'error').orderBy('id', 'desc').limit(1).executeTakeFirst();
        stats.push({
          provider: row.provider,
          requests: Number(row.requests),
          errors: Number(row.errors),
          meanTimeToFirstTokenMs: row.mean_ttft === null ? null : Math.round(Number(row.mean_ttft)),
          meanDurationMs: Math.round(Number(row.mean_duration)),
          lastErrorAt,
          lastErrorCode: last?.error_code ?? null,
        });
      }
      return stats;
    },
    async tokensSince(subject, since) {
      const [column, value] = 'keyId' in subject ? (['key_id', subject.keyId] as const) : (['user_id', subject.userId] as const);
      const row = await db
        .selectFrom('usage')
        .select(sumOf(sql`total_tokens`).as('tokens'))
        .where(column, '=', value)
        .where('at', '>=', since)
        .executeTakeFirstOrThrow();
      return row.tokens;
    },
    async costSince(subject, currency, since) {
      const [column, value] = 'keyId' in subject ? (['key_id', subject.keyId] as const) : (['user_id', subject.userId] as const);
      const row = await db
        .selectFrom('usage')
        .select(sumOf(sql`cost_micros`).as('cost'))
        .where(column, '=', value)
        .where('currency', '=', currency)
        .where('at', '>=', since)
        .executeTakeFirstOrThrow();
      return row.cost;
    },
  };
}

/**
 * The timeline in three grouped queries (never one row per request, so a busy day costs the same
 * as a quiet one): counts per bucket, time-to-first-token bins per bucket, and error codes. The
 * bucket number is `(at - from) / bucketMs` in integer arithmetic, the same in both dialects; the
 * numbers are literals, not bind parameters, so PostgreSQL sees the select and group-by
 * expressions as one.
 */
async function usageTimeline(db: Kysely<Database>, query: UsageTimelineQuery): Promise<UsageTimeline> {
  const bucketMs = Math.max(1, Math.floor(query.bucketMs));
  const count = Math.max(0, Math.ceil((query.to - query.from) / bucketMs));
  const bucket = sql<number>`(at - ${sql.lit(Math.floor(query.from))}) / ${sql.lit(bucketMs)}`;
  const bin = sql<number>`case ${sql.join(
    ttftBinBoundsMs.map((bound, index) => sql`when time_to_first_token_ms <= ${sql.lit(bound)} then ${sql.lit(index)}`),
    sql` `,
  )} else ${sql.lit(ttftBinBoundsMs.length)} end`;
  const inRange = <T extends { where: (column: 'at', operator: '>=' | '<', value: number) => T }>(builder: T): T => builder.where('at', '>=', query.from).where('at', '<', query.to);
  const [totals, bins, codes] = await Promise.all([
    inRange(db.selectFrom('usage'))
      .select([
        bucket.as('bucket'),
        sql<number>`count(*)`.as('requests'),
        sumOf(sql`total_tokens`).as('total_tokens'),
        sumOf(sql`case when outcome in ('error', 'refused') then 1 else 0 end`).as('failures'),
      ])
      .groupBy(bucket)
      .execute(),
    inRange(db.selectFrom('usage'))
      .where('time_to_first_token_ms', 'is not', null)
      .select([bucket.as('bucket'), bin.as('bin'), sql<number>`count(*)`.as('count')])
      .groupBy([bucket, bin])
      .execute(),
    inRange(db.selectFrom('usage'))
      .where('error_code', 'is not', null)
      .select(['error_code', sql<number>`count(*)`.as('count')])
      .groupBy('error_code')
      .execute(),
  ]);
  const buckets = Array.from({ length: count }, (_, index) => ({ start: query.from + index * bucketMs, requests: 0, totalTokens: 0, failures: 0, ttftBins: new Array<number>(ttftBinBoundsMs.length + 1).fill(0) }));
  for (const row of totals) {
    const target = buckets[Number(row.bucket)];
    if (!target) continue;
    target.requests = Number(row.requests);
    target.totalTokens = Number(row.total_tokens);
    target.failures = Number(row.failures);
  }
  for (const row of bins) {
    const target = buckets[Number(row.bucket)];
    if (target) target.ttftBins[Number(row.bin)] = Number(row.count);
  }
  const errorsByCode: Record<string, number> = {};
  for (const row of codes) if (row.error_code !== null) errorsByCode[row.error_code] = Number(row.count);
  return { buckets, errorsByCode };
}

function createRequestLogStore(db: Kysely<Database>): RequestLogStore {
  return {
    async recordMany(entries) {
      if (entries.length === 0) return;
      // A generation's text is written once; a repeat (a retried batch) keeps the first.
      await db
        .insertInto('request_log')
        .values(entries.map((entry) => ({ generation_id: entry.generationId, at: entry.at, user_id: entry.userId, prompt: entry.prompt, answer: entry.answer })))
        .onConflict((conflict) => conflict.column('generation_id').doNothing())
        .execute();
    },
    async get(generationIds) {
      if (generationIds.length === 0) return [];
      const rows = await db.selectFrom('request_log').selectAll().where('generation_id', 'in', [...generationIds]).execute();
      return rows.map((row): RequestText => ({ generationId: row.generation_id, at: Number(row.at), userId: row.user_id, prompt: row.prompt, answer: row.answer }));
    },
    async prune(before) {
      const result = await db.deleteFrom('request_log').where('at', '<', before).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

/**
 * `sum` as a number in both dialects: PostgreSQL's sum of integers is `bigint` or `numeric`, so it
 * is cast to `bigint` (which the pool parses to a number); an empty set sums to 0, not NULL.
 */
function sumOf(expression: RawBuilder<unknown>): RawBuilder<number> {
  return sql<number>`cast(coalesce(sum(${expression}), 0) as bigint)`;
}

function countWhereOutcome(outcome: UsageOutcome): RawBuilder<number> {
  return sumOf(sql`case when outcome = ${sql.lit(outcome)} then 1 else 0 end`);
}

// Each group's SQL expression. The day is grouped as a whole-day number (`at` integer-divided by
// the milliseconds in a day), which is the same SQL and the same answer in both dialects, and
// formatted as `YYYY-MM-DD` in JavaScript; the literal divisor is inlined, not a bind parameter, so
// PostgreSQL sees the select and group-by expressions as identical. Times before 1970 would
// truncate toward zero; Sluice never records any.
const groupExpressions = {
  user: sql<string>`user_id`,
  key: sql<string | null>`key_id`,
  model: sql<string>`model`,
  deployment: sql<string | null>`deployment`,
  day: sql<number>`at / ${sql.lit(dayMs)}`,
} as const satisfies Record<UsageGroup, unknown>;

async function aggregateUsage(db: Kysely<Database>, query: UsageQuery): Promise<UsageAggregate[]> {
  const groups = new Set(query.groupBy);
  // Always split by currency too: a sum of micro-dollars and micro-yuan means nothing.
  const grouped = [...[...groups].map((group) => groupExpressions[group]), sql<string | null>`currency`];
  // Columns not grouped on are selected as NULL so the row shape is the same for every query.
  const column = <T>(group: UsageGroup, expression: RawBuilder<T>): RawBuilder<T | null> =>
    groups.has(group) ? expression : sql<null>`null`;
  const rows = await db
    .selectFrom('usage')
    .select([
      column('user', groupExpressions.user).as('user_id'),
      column('key', groupExpressions.key).as('key_id'),
      column('model', groupExpressions.model).as('model'),
      column('deployment', groupExpressions.deployment).as('deployment'),
      column('day', groupExpressions.day).as('day_number'),
      sql<string | null>`currency`.as('currency'),
      sumOf(sql`cost_micros`).as('cost_micros'),
      sql<number>`count(*)`.as('requests'),
      sumOf(sql`prompt_tokens`).as('prompt_tokens'),
      sumOf(sql`completion_tokens`).as('completion_tokens'),
      sumOf(sql`total_tokens`).as('total_tokens'),
      sumOf(sql`estimated`).as('estimated_requests'),
      countWhereOutcome('completed').as('completed'),
      countWhereOutcome('cancelled').as('cancelled'),
      countWhereOutcome('error').as('errors'),
      countWhereOutcome('refused').as('refused'),
    ])
    .where('at', '>=', query.from)
    .where('at', '<', query.to)
    .where((expression) => {
      const filters = [];
      if (query.userId !== undefined) filters.push(expression('user_id', '=', query.userId));
      if (query.keyId !== undefined) filters.push(expression('key_id', '=', query.keyId));
      if (query.model !== undefined) filters.push(expression('model', '=', query.model));
      return expression.and(filters);
    })
    .groupBy(grouped)
    .execute();

  // Grouped by nothing, an empty range still answers one total row of zeros (the currency split
  // leaves no row to sum into when there is nothing to split).
  if (rows.length === 0 && groups.size === 0) {
    return [{ requests: 0, promptTokens: 0, completionTokens: 0, totalTokens: 0, estimatedRequests: 0, completed: 0, cancelled: 0, errors: 0, refused: 0, costMicros: 0 }];
  }
  const aggregates = rows.map((row): UsageAggregate => ({
    ...(row.user_id !== null ? { userId: row.user_id } : {}),
    ...(row.key_id !== null ? { keyId: row.key_id } : {}),
    ...(row.model !== null ? { model: row.model } : {}),
    ...(row.deployment !== null ? { deployment: row.deployment } : {}),
    ...(row.day_number !== null ? { day: new Date(row.day_number * dayMs).toISOString().slice(0, 10) } : {}),
    requests: row.requests,
    promptTokens: row.prompt_tokens,
    completionTokens: row.completion_tokens,
    totalTokens: row.total_tokens,
    estimatedRequests: row.estimated_requests,
    completed: row.completed,
    cancelled: row.cancelled,
    errors: row.errors,
    refused: row.refused,
    costMicros: row.cost_micros,
    ...(row.currency !== null ? { currency: row.currency } : {}),
  }));
  // Sorted here rather than in SQL: PostgreSQL orders text by the database's collation and puts
  // NULLs last, SQLite by bytes and NULLs first. Code-unit order with absent values last is the
  // same everywhere (and `YYYY-MM-DD` sorts chronologically).
  const fields = { user: 'userId', key: 'keyId', model: 'model', deployment: 'deployment', day: 'day' } as const;
  const order = [...query.groupBy.map((group) => fields[group]), 'currency' as const];
  return aggregates.sort((left, right) => {
    for (const field of order) {
      const a = left[field];
      const b = right[field];
      if (a === b) continue;
      if (a === undefined) return 1;
      if (b === undefined) return -1;
      return a < b ? -1 : 1;
    }
    return 0;
  });
}

function createConversationStore(db: Kysely<Database>): ConversationStore {
  return {
    async create(record) {
      await db
        .insertInto('conversations')
        .values({
          id: record.id,
          user_id: record.userId,
          title: record.title ?? null,
          created_at: record.createdAt,
          updated_at: record.updatedAt,
        })
        .execute();
    },
    async get(id) {
      const row = await db.selectFrom('conversations').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : toConversationRecord(row);
    },
    async list(userId, options) {
      let query = db.selectFrom('conversations').selectAll().where('user_id', '=', userId).orderBy('updated_at', 'desc').orderBy('id', 'desc');
      if (options?.limit !== undefined) query = query.limit(options.limit);
      const rows = await query.execute();
      return rows.map(toConversationRecord);
    },
    async delete(id) {
      // Messages go with it through ON DELETE CASCADE (SQLite needs foreign_keys on: create-store.ts).
      const result = await db.deleteFrom('conversations').where('id', '=', id).executeTakeFirst();
      return result.numDeletedRows > 0n;
    },
    async append(id, messages, at) {
      await db.transaction().execute(async (transaction) => {
        // Touch the conversation first: in PostgreSQL the update locks its row until commit, so a
        // concurrent append to the same conversation waits here and then reads the new max(seq)
        // instead of colliding on the primary key. SQLite serialises write transactions anyway.
        const touched = await transaction
          .updateTable('conversations')
          .set({ updated_at: at })
          .where('id', '=', id)
          .executeTakeFirst();
        if (touched.numUpdatedRows === 0n) throw new Error(`conversation ${id} does not exist`);
        if (messages.length === 0) return;
        const last = await transaction
          .selectFrom('conversation_messages')
          .select((expression) => expression.fn.max('seq').as('seq'))
          .where('conversation_id', '=', id)
          .executeTakeFirst();
        const first = last?.seq === null || last?.seq === undefined ? 0 : last.seq + 1;
        await transaction
          .insertInto('conversation_messages')
          .values(
            messages.map((message, index) => ({
              conversation_id: id,
              seq: first + index,
              role: message.role,
              content: message.content,
              status: message.status,
              created_at: message.createdAt,
              generation_id: message.generationId ?? null,
            })),
          )
          .execute();
      });
    },
    async messages(id, options) {
      const lastCount = options?.lastCount;
      if (lastCount === undefined) {
        const rows = await db
          .selectFrom('conversation_messages')
          .selectAll()
          .where('conversation_id', '=', id)
          .orderBy('seq', 'asc')
          .execute();
        return rows.map(toConversationMessage);
      }
      // The last N are the first N counting down; reversed back into seq order.
      const rows = await db
        .selectFrom('conversation_messages')
        .selectAll()
        .where('conversation_id', '=', id)
        .orderBy('seq', 'desc')
        .limit(Math.max(0, lastCount))
        .execute();
      return rows.reverse().map(toConversationMessage);
    },
  };
}

function createResponseStore(db: Kysely<Database>): ResponseStore {
  return {
    async create(record) {
      await db
        .insertInto('responses')
        .values({
          id: record.id,
          user_id: record.userId,
          generation_id: record.generationId,
          model: record.model,
          status: record.status,
          background: record.background ? 1 : 0,
          created_at: record.createdAt,
          completed_at: record.completedAt ?? null,
          previous_response_id: record.previousResponseId ?? null,
          request: JSON.stringify(record.request),
          input: JSON.stringify(record.input),
          response: JSON.stringify(record.response),
          events: record.events !== undefined ? JSON.stringify(record.events) : null,
        })
        .execute();
    },
    async get(id) {
      const row = await db.selectFrom('responses').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : toResponseRecord(row);
    },
    async finish(id, outcome) {
      const result = await db
        .updateTable('responses')
        .set({
          status: outcome.status,
          completed_at: outcome.completedAt,
          response: JSON.stringify(outcome.response),
          ...(outcome.events !== undefined ? { events: JSON.stringify(outcome.events) } : {}),
        })
        .where('id', '=', id)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },
    async delete(id) {
      const result = await db.deleteFrom('responses').where('id', '=', id).executeTakeFirst();
      return result.numDeletedRows > 0n;
    },
  };
}

function toApiKeyRecord(row: Selectable<ApiKeysTable>): ApiKeyRecord {
  return {
    id: row.id,
    userId: row.user_id,
    role: oneOf<Role>(row.role, roles, 'api_keys.role'),
    ...(row.name !== null ? { name: row.name } : {}),
    secretHash: row.secret_hash,
    limits: {
      ...parseLimits(row.limits),
      ...(row.daily_budget_micros !== null ? { dailyBudgetMicros: Number(row.daily_budget_micros) } : {}),
      ...(row.monthly_budget_micros !== null ? { monthlyBudgetMicros: Number(row.monthly_budget_micros) } : {}),
    },
    ...(row.models !== null ? { models: parseModels(row.models) } : {}),
    createdAt: row.created_at,
    ...(row.expires_at !== null ? { expiresAt: row.expires_at } : {}),
    ...(row.revoked_at !== null ? { revokedAt: row.revoked_at } : {}),
  };
}

const usageOutcomes: readonly UsageOutcome[] = ['completed', 'cancelled', 'error', 'refused'];

function toUsageRecord(row: Selectable<UsageTable>): UsageRecord {
  const optional = {
    keyId: row.key_id,
    generationId: row.generation_id,
    upstreamModel: row.upstream_model,
    timeToFirstTokenMs: row.time_to_first_token_ms,
    errorCode: row.error_code,
    route: row.route,
    deployment: row.deployment,
    providerKeyId: row.provider_key_id,
    attempts: row.attempts,
    costMicros: row.cost_micros,
    currency: row.currency,
  };
  return {
    at: Number(row.at),
    userId: row.user_id,
    provider: row.provider,
    model: row.model,
    promptTokens: row.prompt_tokens,
    completionTokens: row.completion_tokens,
    totalTokens: row.total_tokens,
    estimated: row.estimated === 1,
    durationMs: row.duration_ms,
    outcome: oneOf<UsageOutcome>(row.outcome, usageOutcomes, 'usage.outcome'),
    ...Object.fromEntries(Object.entries(optional).filter(([, value]) => value !== null).map(([name, value]) => [name, typeof value === 'string' ? value : Number(value)])),
  };
}

function toConversationRecord(row: Selectable<ConversationsTable>): ConversationRecord {
  return {
    id: row.id,
    userId: row.user_id,
    ...(row.title !== null ? { title: row.title } : {}),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toConversationMessage(row: Selectable<ConversationMessagesTable>): ConversationMessage {
  return {
    seq: row.seq,
    role: oneOf(row.role, messageRoles, 'conversation_messages.role'),
    content: row.content,
    status: oneOf(row.status, messageStatuses, 'conversation_messages.status'),
    createdAt: row.created_at,
    ...(row.generation_id !== null ? { generationId: row.generation_id } : {}),
  };
}

const responseStatuses: readonly ResponseStatus[] = ['queued', 'in_progress', 'completed', 'incomplete', 'failed', 'cancelled'];

function toResponseRecord(row: Selectable<ResponsesTable>): ResponseRecord {
  return {
    id: row.id,
    userId: row.user_id,
    generationId: row.generation_id,
    model: row.model,
    status: oneOf(row.status, responseStatuses, 'responses.status'),
    background: row.background === 1,
    createdAt: Number(row.created_at),
    ...(row.completed_at !== null ? { completedAt: Number(row.completed_at) } : {}),
    ...(row.previous_response_id !== null ? { previousResponseId: row.previous_response_id } : {}),
    request: parseJson(row.request, 'responses.request'),
    input: parseJson(row.input, 'responses.input'),
    response: parseJson(row.response, 'responses.response'),
    ...(row.events !== null ? { events: parseJson(row.events, 'responses.events') } : {}),
  };
}

/** JSON text of a column, parsed; its shape is for the reader to check. */
function parseJson(text: string, column: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error(`store column ${column} holds text that is not JSON`);
  }
}

// The database is a boundary like any other: a value written by another version, or by hand, is
// reported with its column rather than passed on under a type it does not have.
function oneOf<T extends string>(value: string, allowed: readonly T[], column: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new Error(`store column ${column} holds "${value}", expected one of ${allowed.join(', ')}`);
}

/** Reads the `models` JSON list back. */
function parseModels(text: string): string[] {
  const value: unknown = JSON.parse(text);
  if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string')) {
    throw new Error(`store column api_keys.models holds ${text}, expected a JSON list of strings`);
  }
  return value;
}


/** Reads the `limits` JSON back, keeping only known limit names with finite numeric values. */
function parseLimits(text: string): Limits {
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`store column api_keys.limits holds ${text}, expected a JSON object`);
  }
  const limits: Partial<Record<(typeof limitNames)[number], number>> = {};
  for (const name of limitNames) {
    const limit: unknown = (value as Record<string, unknown>)[name];
    if (limit === undefined) continue;
    if (typeof limit !== 'number' || !Number.isFinite(limit)) {
      throw new Error(`store column api_keys.limits has ${name} = ${JSON.stringify(limit)}, expected a number`);
    }
    limits[name] = limit;
  }
  return limits;
}
