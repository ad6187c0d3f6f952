// The PostgreSQL dialect createStore uses: kysely's own, with an introspector that never looks
// another schema up by name. Kysely's Migrator asks the introspector whether its tables exist, and
// kysely's PostgreSQL introspector lists every table of every schema through
// `has_schema_privilege(name, …)` and `pg_get_serial_sequence(name, …)`. Those resolve the name
// again, outside the query's snapshot, so a schema dropped while the query runs fails it: `schema
// "sluice_test_…" does not exist` stopped a node's start while a test (or another application on
// the same database) dropped its own schema.
import { PostgresDialect, PostgresIntrospector, sql, type DatabaseIntrospector, type DatabaseMetadata, type DatabaseMetadataOptions, type Kysely, type SchemaMetadata, type TableMetadata } from 'kysely';

/** The tables kysely keeps for its Migrator (kysely's DEFAULT_MIGRATION_TABLE and _LOCK_TABLE). */
const kyselyTables = ['kysely_migration', 'kysely_migration_lock'];

interface ColumnRow {
  table: string;
  kind: string;
  column: string | null;
  type: string | null;
  typeSchema: string | null;
  notNull: boolean | null;
  hasDefault: boolean | null;
}

/**
 * Lists the tables and views of the connection's current schema (the first one on the search
 * path, where createStore puts Sluice's tables and kysely's), read from the catalogs by oid only.
 * Columns report `isAutoIncrementing: false` and no comment: nothing in Sluice reads them, and
 * finding them needs the by-name lookups this class exists to avoid.
 */
export class CurrentSchemaIntrospector implements DatabaseIntrospector {
  readonly #db: Kysely<unknown>;

  constructor(db: Kysely<unknown>) {
    this.#db = db;
  }

  getSchemas(): Promise<SchemaMetadata[]> {
    // A plain read of pg_namespace: no lookups by name, so kysely's own is safe.
    return new PostgresIntrospector(this.#db).getSchemas();
  }

  async getTables(options: DatabaseMetadataOptions = { withInternalKyselyTables: false }): Promise<TableMetadata[]> {
    const { rows } = await sql<ColumnRow>`
      select c.relname as "table", c.relkind as "kind", a.attname as "column", t.typname as "type",
             tn.nspname as "typeSchema", a.attnotnull as "notNull", a.atthasdef as "hasDefault"
      from pg_catalog.pg_class c
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      left join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      left join pg_catalog.pg_type t on t.oid = a.atttypid
      left join pg_catalog.pg_namespace tn on tn.oid = t.typnamespace
      where n.nspname = current_schema() and c.relkind in ('r', 'v', 'p')
      order by c.relname, a.attnum`.execute(this.#db);
    const schema = await this.#currentSchema();
    const tables = new Map<string, { name: string; isView: boolean; schema: string; columns: TableMetadata['columns'] }>();
    for (const row of rows) {
      if (!options.withInternalKyselyTables && kyselyTables.includes(row.table)) continue;
      let table = tables.get(row.table);
      if (table === undefined) {
        table = { name: row.table, isView: row.kind === 'v', schema, columns: [] };
        tables.set(row.table, table);
      }
      if (row.column === null) continue;
      table.columns.push({
        name: row.column,
        dataType: row.type ?? '',
        ...(row.typeSchema !== null ? { dataTypeSchema: row.typeSchema } : {}),
        isAutoIncrementing: false,
        isNullable: row.notNull !== true,
        hasDefaultValue: row.hasDefault === true,
      });
    }
    return [...tables.values()];
  }

  async getMetadata(options?: DatabaseMetadataOptions): Promise<DatabaseMetadata> {
    return { tables: await this.getTables(options) };
  }

  async #currentSchema(): Promise<string> {
    const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(this.#db);
    return rows[0]?.schema ?? '';
  }
}

/** kysely's PostgresDialect, introspecting with CurrentSchemaIntrospector. */
export class CurrentSchemaPostgresDialect extends PostgresDialect {
  override createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new CurrentSchemaIntrospector(db);
  }
}
