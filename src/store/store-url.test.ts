// The store URL forms createStore accepts, and the errors that name them for everything else.
import { describe, expect, it } from 'vitest';
import { createStore } from './create-store.js';
import { parseStoreUrl } from './store-url.js';

describe('store URL parsing', () => {
  it('reads SQLite files and memory', () => {
    expect(parseStoreUrl('sqlite:./data/sluice.db')).toEqual({ kind: 'sqlite', path: './data/sluice.db' });
    expect(parseStoreUrl('sqlite::memory:')).toEqual({ kind: 'sqlite', path: ':memory:' });
  });

  it('reads PostgreSQL URLs in both spellings, taking ?schema= out of what pg sees', () => {
    expect(parseStoreUrl('postgres://u:p@db.internal:6543/sluice?schema=tenant_1&sslmode=require')).toEqual({
      kind: 'postgres',
      connectionString: 'postgres://u:p@db.internal:6543/sluice?sslmode=require',
      schema: 'tenant_1',
      displayName: 'db.internal:6543/sluice',
    });
    expect(parseStoreUrl('postgresql://db/sluice')).toEqual({
      kind: 'postgres',
      connectionString: 'postgresql://db/sluice',
      displayName: 'db:5432/sluice',
    });
  });

  it('refuses a schema name that is not a plain identifier', () => {
    expect(() => parseStoreUrl('postgres://db/sluice?schema=a;drop')).toThrow(/not a plain identifier/);
  });

  it('names the accepted forms for an unknown scheme, without echoing the rest of the URL', () => {
    expect(() => parseStoreUrl('mysql://root:hunter2@db/sluice')).toThrow(/mysql: is not supported; accepted forms: sqlite:<path>, sqlite::memory:, postgres:/);
    expect(() => parseStoreUrl('mysql://root:hunter2@db/sluice')).not.toThrow(/hunter2/);
    expect(() => parseStoreUrl('sqlite:')).toThrow(/names no file/);
    expect(() => parseStoreUrl('./sluice.db')).toThrow(/accepted forms/);
  });

  it('makes createStore reject rather than open anything', async () => {
    await expect(createStore('redis://localhost')).rejects.toThrow(/accepted forms/);
  });
});
