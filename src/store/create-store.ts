// Opens the store a URL names: a SQLite file (the default, embedded) or a PostgreSQL database
// (several nodes sharing one). Sets up the connection, brings the schema to the latest migration,
// and returns the one kysely-backed Store; nothing else in Sluice knows which database it is.
import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname } from 'node:path';
import Sqlite from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from './database.js';
import { migrateToLatest, withMigrationLock } from './migrations.js';
import { CurrentSchemaPostgresDialect } from './postgres-introspector.js';
import { createSqlStore } from './sql-store.js';
import { parseStoreUrl, type StoreLocation } from './store-url.js';
import type { Store } from './store.js';

/** Options for createStore. */
export interface CreateStoreOptions {
  /**
   * Clock, in milliseconds since the epoch; default `Date.now`. Accepted so callers inject one
   * clock everywhere; no current Store method reads it, since every write is given its time.
   */
  readonly now?: () => number;
}

// How long a SQLite writer waits for another connection's lock (another process on the same file,
// the CLI beside a running server) before SQLITE_BUSY. better-sqlite3 waits synchronously, so a
// running server's event loop stands still meanwhile: 5 s at most.
const sqliteBusyTimeoutMs = 5_000;
// The same while the store opens (WAL switch, migrations), when nothing is served yet: several
// nodes starting at once on one new file wait for each other's migration transaction in turn, and
// on a loaded machine one of them held it past 5 s ("database is locked" in CI, four nodes on two
// busy cores).
const sqliteOpeningBusyTimeoutMs = 60_000;
// How long opening a PostgreSQL connection may take before createStore gives up; pg's default is
// to wait forever, which would hang startup on a firewalled host.
const postgresConnectTimeoutMs = 10_000;
const postgresInt8Oid = 20;

/**
 * Opens the store at `url`, migrates it to the latest schema (a no-op when it is current), and
 * returns it. Accepted forms: `sqlite:<path>` (the parent directory is created if missing),
 * `sqlite::memory:`, and `postgres://…` / `postgresql://…` with an optional `?schema=<name>` (the
 * schema is created if missing and becomes the connection's search path).
 *
 * @throws Error naming the accepted forms for an unknown scheme; naming the host when PostgreSQL
 *   cannot be reached; naming the migration when one fails.
 */
export async function createStore(url: string, _options: CreateStoreOptions = {}): Promise<Store> {
  const location = parseStoreUrl(url);
  const db = location.kind === 'sqlite' ? await openSqlite(location.path) : await openPostgres(location);
  try {
    // Under one lock with the migrations: several nodes starting at once on an empty database
    // create the schema and run each migration exactly once, and the others wait, then find them.
    await withMigrationLock(db, location.kind, async (connection) => {
      const schema = location.kind === 'postgres' ? await preparePostgresSchema(connection, location) : undefined;
      await migrateToLatest(connection, location.kind, schema);
    });
    if (location.kind === 'sqlite') await sql.raw(`pragma busy_timeout = ${sqliteBusyTimeoutMs.toString()}`).execute(db);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return createSqlStore(db, location.kind);
}

async function openSqlite(path: string): Promise<Kysely<Database>> {
  if (path !== ':memory:') await mkdir(dirname(path), { recursive: true });
  const database = new Sqlite(path);
  try {
    // First, so that every statement after it waits for another process that holds the lock
    // (several nodes starting on one new file) instead of failing. createStore shortens it once
    // the migrations are done.
    database.pragma(`busy_timeout = ${sqliteOpeningBusyTimeoutMs.toString()}`);
    // WAL lets readers (the CLI, /readyz) run while the server writes.
    await switchToWal(database, path);
    // In WAL mode NORMAL never corrupts the database; it may lose the last commits on power loss,
    // not on a crash of the process. FULL costs an fsync per commit, which made every usage row
    // the most expensive thing a request did (CPU per non-streamed request 0.37× → 1.41× of the
    // hand relay in the benchmark).
    database.pragma('synchronous = NORMAL');
    // Off by default in SQLite; conversation_messages relies on ON DELETE CASCADE.
    database.pragma('foreign_keys = ON');
  } catch (error) {
    database.close();
    throw error;
  }
  return new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
}

/**
 * Puts the file in WAL mode (kept in the file: later opens find it so). The switch needs the file's
 * exclusive lock and does not wait for another connection that holds a lock (busy_timeout does not
 * apply): it throws SQLITE_BUSY at once. Nodes starting together on one new file meet exactly
 * there, so it is tried again every 50 ms for as long as the opening waits for locks. (A file
 * system without WAL support answers the old mode instead; the file then stays in it, as before.)
 */
async function switchToWal(database: Sqlite.Database, path: string): Promise<void> {
  const deadline = Date.now() + sqliteOpeningBusyTimeoutMs;
  for (;;) {
    try {
      database.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'SQLITE_BUSY') throw error;
      if (Date.now() >= deadline) {
        throw new Error(`Could not switch the SQLite file ${path} to WAL mode: another process held its lock for ${(sqliteOpeningBusyTimeoutMs / 1000).toString()} s.`, { cause: error });
      }
    }
    await sleep(50);
  }
}

/** The pool behind kysely, checked by one connection so an unreachable server fails here, by name. */
async function openPostgres(location: Extract<StoreLocation, { kind: 'postgres' }>): Promise<Kysely<Database>> {
  const pool = new pg.Pool({
    connectionString: location.connectionString,
    connectionTimeoutMillis: postgresConnectTimeoutMs,
    ...(location.schema !== undefined ? { options: `-c search_path=${location.schema}` } : {}),
    // The one place PostgreSQL's bigint (times, count(*), sums) becomes a number: pg returns int8
    // as a string because it may exceed 2^53. Milliseconds and token counts never do; a value that
    // did would be an error, not a silently rounded number. Per pool, so other pg users keep pg's
    // defaults.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown => {
        if (oid === postgresInt8Oid) return parseInt8;
        const builtIn: unknown = pg.types.getTypeParser(oid, format);
        return builtIn;
      }) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client that loses its connection emits on the pool; unhandled, that would crash the
  // process. pg drops that client, and the next query surfaces the problem to its caller.
  pool.on('error', () => {});
  try {
    (await pool.connect()).release();
  } catch (error) {
    await pool.end();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot connect to PostgreSQL at ${location.displayName}: ${reason}`, { cause: error });
  }
  // Not kysely's PostgresDialect: its introspector fails while another schema is being dropped.
  return new Kysely<Database>({ dialect: new CurrentSchemaPostgresDialect({ pool }) });
}

/**
 * Creates the `?schema=` schema if it is missing and returns the schema the tables live in (the
 * first one on the search path). Runs inside the migration lock: `create schema if not exists`
 * is not safe against itself (two sessions may both pass the "if not exists").
 */
async function preparePostgresSchema(connection: Kysely<Database>, location: Extract<StoreLocation, { kind: 'postgres' }>): Promise<string> {
  if (location.schema !== undefined) await sql.raw(`create schema if not exists "${location.schema}"`).execute(connection);
  const result = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(connection);
  const schema = result.rows[0]?.schema ?? null;
  if (schema === null) {
    throw new Error(
      `PostgreSQL at ${location.displayName} has no schema on the search path to create tables in; add ?schema=<name> to the store URL`,
    );
  }
  return schema;
}

function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`PostgreSQL bigint ${text} is beyond the safe integer range`);
  return value;
}
