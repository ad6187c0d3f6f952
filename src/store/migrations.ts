// Versioned schema changes, applied in name order by kysely's Migrator when a store opens. A
// migration, once released, is never edited: a change to the schema is a new entry.
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

/** The dialects a store runs on; migrations differ only where SQL itself does. */
export type StoreKind = 'sqlite' | 'postgres';

/**
 * The migrations for one dialect, keyed by name (`NNNN-<slug>`). The Migrator sorts by name, so
 * the four-digit prefix fixes the order.
 */
export function createMigrations(kind: StoreKind): Record<string, Migration> {
  return {
    '0001-keys-usage-conversations': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('api_keys')
          .addColumn('id', 'text', (column) => column.primaryKey())
          .addColumn('user_id', 'text', (column) => column.notNull())
          .addColumn('role', 'text', (column) => column.notNull())
          .addColumn('name', 'text')
          .addColumn('secret_hash', 'text', (column) => column.notNull())
          .addColumn('limits', 'text', (column) => column.notNull())
          .addColumn('created_at', 'bigint', (column) => column.notNull())
          .addColumn('expires_at', 'bigint')
          .addColumn('revoked_at', 'bigint')
          .execute();
        await db.schema.createIndex('api_keys_user_id').on('api_keys').columns(['user_id', 'created_at']).execute();

        // The one dialect difference: SQLite's rowid alias versus a PostgreSQL identity column.
        const usage =
          kind === 'sqlite'
            ? db.schema.createTable('usage').addColumn('id', 'integer', (column) => column.primaryKey().autoIncrement())
            : db.schema.createTable('usage').addColumn('id', 'bigint', (column) => column.primaryKey().generatedAlwaysAsIdentity());
        await usage
          .addColumn('at', 'bigint', (column) => column.notNull())
          .addColumn('user_id', 'text', (column) => column.notNull())
          .addColumn('key_id', 'text')
          .addColumn('generation_id', 'text')
          .addColumn('provider', 'text', (column) => column.notNull())
          .addColumn('model', 'text', (column) => column.notNull())
          .addColumn('upstream_model', 'text')
          .addColumn('prompt_tokens', 'integer', (column) => column.notNull())
          .addColumn('completion_tokens', 'integer', (column) => column.notNull())
          .addColumn('total_tokens', 'integer', (column) => column.notNull())
          .addColumn('estimated', 'integer', (column) => column.notNull())
          .addColumn('time_to_first_token_ms', 'integer')
          .addColumn('duration_ms', 'integer', (column) => column.notNull())
          .addColumn('outcome', 'text', (column) => column.notNull())
          .addColumn('error_code', 'text')
          .execute();
        await db.schema.createIndex('usage_user_id_at').on('usage').columns(['user_id', 'at']).execute();
        await db.schema.createIndex('usage_key_id_at').on('usage').columns(['key_id', 'at']).execute();
        await db.schema.createIndex('usage_at').on('usage').column('at').execute();

        await db.schema
          .createTable('conversations')
          .addColumn('id', 'text', (column) => column.primaryKey())
          .addColumn('user_id', 'text', (column) => column.notNull())
          .addColumn('title', 'text')
          .addColumn('created_at', 'bigint', (column) => column.notNull())
          .addColumn('updated_at', 'bigint', (column) => column.notNull())
          .execute();
        await db.schema
          .createIndex('conversations_user_id_updated_at')
          .on('conversations')
          .columns(['user_id', 'updated_at'])
          .execute();

        await db.schema
          .createTable('conversation_messages')
          .addColumn('conversation_id', 'text', (column) =>
            column.notNull().references('conversations.id').onDelete('cascade'),
          )
          .addColumn('seq', 'integer', (column) => column.notNull())
          .addColumn('role', 'text', (column) => column.notNull())
          .addColumn('content', 'text', (column) => column.notNull())
          .addColumn('status', 'text', (column) => column.notNull())
          .addColumn('created_at', 'bigint', (column) => column.notNull())
          .addColumn('generation_id', 'text')
          .addPrimaryKeyConstraint('conversation_messages_pk', ['conversation_id', 'seq'])
          .execute();
      },
    },
    // Usage rows say which API surface they came from and, with upstream pools, which deployment
    // and which provider key served and after how many attempts; keys may name the models they
    // allow. All nullable: rows and keys from before stay valid.
    '0002-usage-routing-and-key-models': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema.alterTable('usage').addColumn('route', 'text').execute();
        await db.schema.alterTable('usage').addColumn('deployment', 'text').execute();
        await db.schema.alterTable('usage').addColumn('provider_key_id', 'text').execute();
        await db.schema.alterTable('usage').addColumn('attempts', 'integer').execute();
        await db.schema.alterTable('api_keys').addColumn('models', 'text').execute();
      },
    },
    // Responses of the Responses API (POST /v1/responses) kept for GET, previous_response_id and
    // background resumes. The request echo, input items, response object and event log are JSON
    // text: the routes read them as a whole and never query inside them.
    '0003-responses': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('responses')
          .addColumn('id', 'text', (column) => column.primaryKey())
          .addColumn('user_id', 'text', (column) => column.notNull())
          .addColumn('generation_id', 'text', (column) => column.notNull())
          .addColumn('model', 'text', (column) => column.notNull())
          .addColumn('status', 'text', (column) => column.notNull())
          .addColumn('background', 'integer', (column) => column.notNull())
          .addColumn('created_at', 'bigint', (column) => column.notNull())
          .addColumn('completed_at', 'bigint')
          .addColumn('previous_response_id', 'text')
          .addColumn('request', 'text', (column) => column.notNull())
          .addColumn('input', 'text', (column) => column.notNull())
          .addColumn('response', 'text', (column) => column.notNull())
          .addColumn('events', 'text')
          .execute();
      },
    },
    // Spend (docs/spend.md): what each usage row cost, in whole micro-units of its currency (NULL
    // for rows of unpriced models and rows from before), and the budgets of keys, in micro-units.
    // bigint throughout: a month of micro-dollars passes 2^31 at a few thousand dollars.
    '0004-spend': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema.alterTable('usage').addColumn('cost_micros', 'bigint').execute();
        await db.schema.alterTable('usage').addColumn('currency', 'text').execute();
        await db.schema.alterTable('api_keys').addColumn('daily_budget_micros', 'bigint').execute();
        await db.schema.alterTable('api_keys').addColumn('monthly_budget_micros', 'bigint').execute();
      },
    },
    // The request log (docs/console.md): the prompt and answer text of each generation, written
    // only when the config says `log: { requests: true }`. Who, when, which model, the outcome and
    // the timings are already in the usage row of the same generation_id; this table holds only
    // the text, so a gateway that never turns logging on keeps no text at all. Reading the log
    // filters usage rows by model and outcome as well as by user and time: the two indexes serve
    // those filters.
    '0005-request-log': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('request_log')
          .addColumn('generation_id', 'text', (column) => column.primaryKey())
          .addColumn('at', 'bigint', (column) => column.notNull())
          .addColumn('user_id', 'text', (column) => column.notNull())
          .addColumn('prompt', 'text', (column) => column.notNull())
          .addColumn('answer', 'text', (column) => column.notNull())
          .execute();
        await db.schema.createIndex('request_log_at').on('request_log').column('at').execute();
        await db.schema.createIndex('usage_model_at').on('usage').columns(['model', 'at']).execute();
        await db.schema.createIndex('usage_outcome_at').on('usage').columns(['outcome', 'at']).execute();
      },
    },
  };
}

/** The names of every migration, in the order they apply. */
export const migrationNames: readonly string[] = Object.keys(createMigrations('sqlite')).sort();

/**
 * The PostgreSQL advisory lock (a bigint key) that serialises Sluice's first-start work across
 * every process using the database: migrations with the creation of the store's schema, and
 * installing the first admin key. The value is "sluice" in ASCII; nothing else takes it. One lock
 * for the whole database, not one per schema: kysely's own migration lock is database-wide anyway,
 * and the work it guards takes milliseconds.
 */
export const postgresSetupLockKey = 0x736c75696365n;

/**
 * Runs `work` on one connection inside one transaction that no other process can run at the same
 * time, and commits it (or rolls it all back when `work` throws).
 *
 * - PostgreSQL: `pg_advisory_xact_lock`, held until the transaction ends. Kysely's Migrator takes
 *   a lock too, but only around running the migrations: its table creation before that, and our
 *   `create schema if not exists`, race (`duplicate key value violates unique constraint
 *   "pg_namespace_nspname_index"` when three nodes started at once on an empty database).
 * - SQLite: `BEGIN IMMEDIATE` takes the write lock before the first read, so a second process on
 *   the same file waits (busy_timeout) and then sees the finished schema. Kysely runs SQLite
 *   migrations without a transaction and without a lock ("one connection"), which holds only inside
 *   one process: two processes on one new file both ran 0001 and one failed with `table
 *   "api_keys" already exists`.
 */
export async function withMigrationLock<Schema, Result>(
  db: Kysely<Schema>,
  kind: StoreKind,
  work: (connection: Kysely<Schema>) => Promise<Result>,
): Promise<Result> {
  return db.connection().execute(async (connection) => {
    await sql.raw(kind === 'sqlite' ? 'begin immediate' : 'begin').execute(connection);
    let result: Result;
    try {
      if (kind === 'postgres') await sql`select pg_advisory_xact_lock(${sql.lit(postgresSetupLockKey)})`.execute(connection);
      result = await work(connection);
    } catch (error) {
      // A failed statement has already aborted a PostgreSQL transaction; the rollback ends it, and
      // its own failure (the connection is gone) must not hide the first error.
      await sql.raw('rollback').execute(connection).catch(() => {});
      throw error;
    }
    await sql.raw('commit').execute(connection);
    return result;
  });
}

/**
 * Brings the database up to the latest migration; a no-op when it is already there. Call it inside
 * `withMigrationLock`, with the connection that gives: every migration then runs in that one
 * transaction, so a failed one leaves the database as it was, and concurrent starts run them once.
 * Kysely keeps its own `kysely_migration` and `kysely_migration_lock` tables.
 *
 * `schema` (PostgreSQL only) is the schema the store's tables live in, where the bookkeeping tables
 * go too. It must be given there: without it kysely looks for `kysely_migration` in every schema
 * of the database, so another store's schema (a test run, another app) would count as ours.
 *
 * @throws Error naming the failed migration, with the database's error as `cause`.
 */
export async function migrateToLatest<Schema>(connection: Kysely<Schema>, kind: StoreKind, schema?: string): Promise<void> {
  const migrations = createMigrations(kind);
  const provider: MigrationProvider = { getMigrations: async () => migrations };
  // disableTransactions: the caller's transaction is the one that matters; a nested BEGIN would
  // be refused by SQLite, and kysely's COMMIT would end ours (and release its lock) early.
  const migrator = new Migrator({ db: connection, provider, disableTransactions: true, ...(schema !== undefined ? { migrationTableSchema: schema } : {}) });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName ?? '(before any migration ran)';
    throw new Error(`store migration ${failed} failed: ${error instanceof Error ? error.message : JSON.stringify(error)}`, {
      cause: error,
    });
  }
}
