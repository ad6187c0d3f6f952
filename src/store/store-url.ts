// Reads a store URL (`store.url` in the config) into what createStore needs to open it. Kept apart
// from the opening itself so the accepted forms are checked, and tested, without a database.

/** What a store URL names. */
export type StoreLocation =
  | { readonly kind: 'sqlite'; readonly path: string }
  | {
      readonly kind: 'postgres';
      /** The URL handed to pg, without Sluice's own `schema` parameter. */
      readonly connectionString: string;
      /** From `?schema=`: the PostgreSQL schema that holds the tables, created if missing. */
      readonly schema?: string;
      /** `host:port/database`, for error messages; never the password. */
      readonly displayName: string;
    };

/** The forms createStore accepts, for error messages and docs. */
export const acceptedStoreUrls = 'sqlite:<path>, sqlite::memory:, postgres://… or postgresql://… (optionally ?schema=<name>)';

// An unquoted PostgreSQL identifier: the schema name goes into `search_path` and `create schema`,
// so anything else is refused rather than quoted.
const schemaNamePattern = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Parses a store URL.
 *
 * - `sqlite:<path>`: a file, relative to the working directory (`sqlite:./data/sluice.db`).
 * - `sqlite::memory:`: an in-memory database, gone when the store closes.
 * - `postgres://…` or `postgresql://…`: any URL pg accepts; `?schema=<name>` puts the tables in
 *   that schema (created if missing) instead of the role's default search path.
 *
 * @throws Error naming the accepted forms when the scheme is unknown or a part is invalid.
 */
export function parseStoreUrl(url: string): StoreLocation {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '') throw new Error(`store URL "sqlite:" names no file; accepted forms: ${acceptedStoreUrls}`);
    return { kind: 'sqlite', path };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (error) {
      throw new Error(`store URL is not a valid PostgreSQL URL; accepted forms: ${acceptedStoreUrls}`, { cause: error });
    }
    const schema = parsed.searchParams.get('schema');
    parsed.searchParams.delete('schema');
    const host = parsed.hostname === '' ? 'localhost' : parsed.hostname;
    const database = decodeURIComponent(parsed.pathname.slice(1));
    const displayName = `${host}:${parsed.port === '' ? '5432' : parsed.port}${database === '' ? '' : `/${database}`}`;
    if (schema === null) return { kind: 'postgres', connectionString: parsed.toString(), displayName };
    if (!schemaNamePattern.test(schema)) {
      throw new Error(`store URL schema "${schema}" is not a plain identifier (letters, digits, _; not starting with a digit)`);
    }
    return { kind: 'postgres', connectionString: parsed.toString(), schema, displayName };
  }
  // Show only the scheme: the rest may hold a password.
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:/.exec(url)?.[0] ?? '(none)';
  throw new Error(`store URL scheme ${scheme} is not supported; accepted forms: ${acceptedStoreUrls}`);
}
