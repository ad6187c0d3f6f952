import { createHash, timingSafeEqual } from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { SluiceError } from '../errors/sluice-error.js';
import type { ApiKeyRecord, KeyStore } from '../store/store.js';
import { createKeyService, ensureAdminKey, hashSecret, isApiKeyFormat, type KeyService } from './api-keys.js';

// Spy on the constant-time comparison while keeping its real behaviour, to prove every outcome
// (right secret, wrong secret, unknown id) goes through it.
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

/** The smallest KeyStore that keeps the contract the service relies on. */
function createFakeKeyStore(): KeyStore & { readonly records: Map<string, ApiKeyRecord> } {
  const records = new Map<string, ApiKeyRecord>();
  return {
    records,
    async create(record) {
      if (records.has(record.id)) throw new Error(`duplicate key id ${record.id}`);
      records.set(record.id, record);
    },
    async createIfEmpty(record) {
      if (records.size > 0) return false;
      records.set(record.id, record);
      return true;
    },
    async get(id) {
      return records.get(id);
    },
    async list(filter) {
      return [...records.values()].filter((record) => filter?.userId === undefined || record.userId === filter.userId).reverse();
    },
    async revoke(id, at) {
      const record = records.get(id);
      if (!record || record.revokedAt !== undefined) return false;
      records.set(id, { ...record, revokedAt: at });
      return true;
    },
    async count() {
      return records.size;
    },
  };
}

async function rejectionOf(promise: Promise<unknown>): Promise<SluiceError> {
  const error: unknown = await promise.then(() => undefined, (reason: unknown) => reason);
  if (!(error instanceof SluiceError)) throw new Error(`expected a SluiceError, got ${String(error)}`);
  return error;
}

const start = Date.UTC(2025, 0, 1);
let nowMs = start;
let store: ReturnType<typeof createFakeKeyStore>;
let service: KeyService;

beforeEach(() => {
  nowMs = start;
  store = createFakeKeyStore();
  service = createKeyService({ keys: store, now: () => nowMs });
  vi.mocked(timingSafeEqual).mockClear();
});

describe('key format', () => {
  it('is sk-sluice-<12 of a-z0-9>-<32 bytes base64url>, and the record id is the id part', async () => {
    const { key, record } = await service.create({ userId: 'alice', role: 'user' });
    const match = /^sk-sluice-([a-z0-9]{12})-([A-Za-z0-9_-]{43})$/.exec(key);
    expect(match).not.toBeNull();
    expect(record.id).toBe(match?.[1]);
    expect(Buffer.from(match?.[2] ?? '', 'base64url')).toHaveLength(32);
    expect(isApiKeyFormat(key)).toBe(true);
  });

  it('gives a different id and secret every time', async () => {
    const first = await service.create({ userId: 'alice', role: 'user' });
    const second = await service.create({ userId: 'alice', role: 'user' });
    expect(first.record.id).not.toBe(second.record.id);
    expect(first.key.slice(23)).not.toBe(second.key.slice(23));
  });

  it('skips random bytes >= 252 so no id letter is likelier than another', async () => {
    const biased = [252, 253, 254, 255, 0, 35, 36, 251];
    const seeded = createKeyService({
      keys: store,
      now: () => nowMs,
      randomBytes: (size) => Uint8Array.from({ length: size }, (_, index) => biased[index % biased.length] ?? 0),
    });
    const { record } = await seeded.create({ userId: 'alice', role: 'user' });
    // 0 → a, 35 → 9, 36 → a, 251 → 251 % 36 = 35 → 9; the four biased bytes are dropped.
    expect(record.id).toBe('a9a9a9a9a9a9');
  });

  it('recognises only well-formed keys', () => {
    expect(isApiKeyFormat(`sk-sluice-abcdefghijkl-${'A'.repeat(43)}`)).toBe(true);
    expect(isApiKeyFormat(`sk-sluice-ABCDEFGHIJKL-${'A'.repeat(43)}`)).toBe(false);
    expect(isApiKeyFormat(`sk-sluice-abcdefghijkl-${'A'.repeat(42)}`)).toBe(false);
    expect(isApiKeyFormat(`sk-sluice-abcdefghijk-${'A'.repeat(43)}`)).toBe(false);
    expect(isApiKeyFormat('eyJhbGciOiJIUzI1NiJ9.e30.sig')).toBe(false);
  });
});

describe('storage', () => {
  it('stores the sha256 hex of the secret and never the secret', async () => {
    const { key, record } = await service.create({ userId: 'alice', role: 'service', name: 'ci', limits: { requestsPerMinute: 60 } });
    const secret = key.slice('sk-sluice-'.length + 13);
    const stored = store.records.get(record.id);
    expect(stored?.secretHash).toBe(createHash('sha256').update(secret).digest('hex'));
    expect(stored?.secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(hashSecret(secret)).toBe(stored?.secretHash);
    expect(JSON.stringify(stored)).not.toContain(secret);
    expect(stored).toMatchObject({ userId: 'alice', role: 'service', name: 'ci', limits: { requestsPerMinute: 60 }, createdAt: start });
  });

  it('refuses an expiry that is not in the future and a malformed user id', async () => {
    const past = await rejectionOf(service.create({ userId: 'alice', role: 'user', expiresAt: start }));
    expect(past).toMatchObject({ code: 'invalid_request', param: 'expiresAt' });
    const badUser = await rejectionOf(service.create({ userId: 'alice smith', role: 'user' }));
    expect(badUser).toMatchObject({ code: 'invalid_request', param: 'userId' });
    expect(store.records.size).toBe(0);
  });

  it('stores a key\'s model list, and refuses an empty one or a bad pattern naming the element', async () => {
    const { record } = await service.create({ userId: 'alice', role: 'user', models: ['chat', 'spark-*'] });
    expect(store.records.get(record.id)?.models).toEqual(['chat', 'spark-*']);
    const empty = await rejectionOf(service.create({ userId: 'alice', role: 'user', models: [] }));
    expect(empty).toMatchObject({ code: 'invalid_request', param: 'models' });
    const badPattern = await rejectionOf(service.create({ userId: 'alice', role: 'user', models: ['chat', 'gpt 4o'] }));
    expect(badPattern).toMatchObject({ code: 'invalid_request', param: 'models[1]' });
    expect(badPattern.message).toMatch(/^The key's models\[1\] must be 1 to 128 characters/);
    expect(store.records.size).toBe(1);
  });
});

describe('authenticate', () => {
  it('resolves a good key to its principal through the constant-time comparison', async () => {
    const { key, record } = await service.create({ userId: 'alice', role: 'service', limits: { concurrentStreams: 2 } });
    await expect(service.authenticate(key)).resolves.toEqual({ userId: 'alice', role: 'service', via: 'key', keyId: record.id, keyLimits: { concurrentStreams: 2 } });
    expect(timingSafeEqual).toHaveBeenCalledTimes(1);
  });

  it('hands the key\'s model list to the principal as allowedModels', async () => {
    const { key } = await service.create({ userId: 'alice', role: 'user', models: ['chat', 'openai/*'] });
    expect((await service.authenticate(key)).allowedModels).toEqual(['chat', 'openai/*']);
  });

  it('answers an unknown id and a wrong secret identically, both after a constant-time comparison', async () => {
    const { key } = await service.create({ userId: 'alice', role: 'user' });
    const wrongSecret = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;
    const unknownId = `sk-sluice-zzzzzzzzzzzz-${key.slice(-43)}`;
    const wrong = await rejectionOf(service.authenticate(wrongSecret));
    const unknown = await rejectionOf(service.authenticate(unknownId));
    expect(wrong.code).toBe('invalid_api_key');
    expect(unknown.code).toBe('invalid_api_key');
    expect(unknown.message).toBe(wrong.message);
    expect(wrong.message).not.toContain(key.slice(10, 22));
    expect(timingSafeEqual).toHaveBeenCalledTimes(2);
  });

  it('refuses a malformed key without asking the store', async () => {
    const get = vi.spyOn(store, 'get');
    const error = await rejectionOf(service.authenticate('sk-sluice-short'));
    expect(error.code).toBe('invalid_api_key');
    expect(error.message).toContain('sk-sluice-<12');
    expect(get).not.toHaveBeenCalled();
  });

  it('treats a corrupt stored hash as a wrong secret instead of crashing', async () => {
    const { key, record } = await service.create({ userId: 'alice', role: 'user' });
    store.records.set(record.id, { ...record, secretHash: 'abc' });
    await expect(rejectionOf(service.authenticate(key))).resolves.toMatchObject({ code: 'invalid_api_key' });
  });

  it('refuses a revoked key with api_key_revoked', async () => {
    const { key, record } = await service.create({ userId: 'alice', role: 'user' });
    await store.revoke(record.id, start + 1000);
    const error = await rejectionOf(service.authenticate(key));
    expect(error.code).toBe('api_key_revoked');
    expect(error.message).toContain('2025-01-01T00:00:01.000Z');
  });

  it('accepts a key until its expiry and refuses it from that millisecond on', async () => {
    const expiresAt = start + 60_000;
    const { key } = await service.create({ userId: 'alice', role: 'user', expiresAt });
    nowMs = expiresAt - 1;
    await expect(service.authenticate(key)).resolves.toMatchObject({ userId: 'alice' });
    nowMs = expiresAt;
    const error = await rejectionOf(service.authenticate(key));
    expect(error.code).toBe('api_key_expired');
    expect(error.message).toContain('2025-01-01T00:01:00.000Z');
  });

  it('never puts the secret in an error message', async () => {
    const { key, record } = await service.create({ userId: 'alice', role: 'user' });
    await store.revoke(record.id, start);
    const secret = key.slice(-43);
    const messages = await Promise.all([service.authenticate(key), service.authenticate(`${key.slice(0, -1)}x`)].map(async (attempt) => (await rejectionOf(attempt)).message));
    for (const message of messages) expect(message).not.toContain(secret);
  });
});

describe('ensureAdminKey', () => {
  it('creates one working admin key on an empty store, and nothing once keys exist', async () => {
    const first = await ensureAdminKey(service);
    expect(first?.source).toBe('generated');
    await expect(service.authenticate(first?.created ?? '')).resolves.toMatchObject({ userId: 'admin', role: 'admin', keyId: first?.keyId });
    await expect(ensureAdminKey(service)).resolves.toBeUndefined();
    expect(store.records.size).toBe(1);
  });

  it('installs the operator\'s SLUICE_ADMIN_KEY so that exact key works', async () => {
    const presetKey = `sk-sluice-opsadmin0001-${Buffer.alloc(32, 7).toString('base64url')}`;
    const result = await ensureAdminKey(service, { presetKey });
    expect(result).toEqual({ created: presetKey, keyId: 'opsadmin0001', source: 'preset' });
    await expect(service.authenticate(presetKey)).resolves.toMatchObject({ userId: 'admin', role: 'admin', keyId: 'opsadmin0001' });
    expect(JSON.stringify([...store.records.values()])).not.toContain(presetKey.slice(-43));
  });

  it('leaves existing keys alone even when SLUICE_ADMIN_KEY is set', async () => {
    await service.create({ userId: 'alice', role: 'user' });
    const presetKey = `sk-sluice-opsadmin0001-${Buffer.alloc(32, 7).toString('base64url')}`;
    await expect(ensureAdminKey(service, { presetKey })).resolves.toBeUndefined();
    expect(store.records.has('opsadmin0001')).toBe(false);
  });

  it('installs one key when several nodes race on an empty store: one shared SLUICE_ADMIN_KEY, or one generated key', async () => {
    // Every call sees count() === 0 before any of them writes, as nodes starting together do.
    const presetKey = `sk-sluice-opsadmin0001-${Buffer.alloc(32, 7).toString('base64url')}`;
    const preset = await Promise.all([1, 2, 3].map(() => ensureAdminKey(service, { presetKey })));
    expect(preset.filter((result) => result !== undefined)).toEqual([{ created: presetKey, keyId: 'opsadmin0001', source: 'preset' }]);
    expect(store.records.size).toBe(1);

    store.records.clear();
    const generated = await Promise.all([1, 2, 3].map(() => ensureAdminKey(service)));
    const printed = generated.filter((result) => result !== undefined);
    expect(printed).toHaveLength(1);
    expect(store.records.size).toBe(1);
    await expect(service.authenticate(printed[0]?.created ?? '')).resolves.toMatchObject({ role: 'admin' });
  });

  it('refuses a malformed SLUICE_ADMIN_KEY, explaining the format and how to get one', async () => {
    const attempt = ensureAdminKey(service, { presetKey: 'correct horse battery staple, long enough' });
    await expect(attempt).rejects.toThrow(/SLUICE_ADMIN_KEY is not a Sluice API key.*sk-sluice-.*sluice keys create/);
    await expect(attempt).rejects.not.toThrow(/correct horse/);
    expect(store.records.size).toBe(0);
  });
});

describe('the key record cache', () => {
  it('spares the store a query per request, and a revoke through the service applies at once', async () => {
    const { key, record } = await service.create({ userId: 'alice', role: 'user' });
    const get = vi.spyOn(store, 'get');
    for (let index = 0; index < 5; index++) await service.authenticate(key);
    expect(get).toHaveBeenCalledTimes(1);
    expect(await service.revoke(record.id)).toBe(true);
    expect((await rejectionOf(service.authenticate(key))).code).toBe('api_key_revoked');
  });

  it('picks up a revoke made elsewhere (another node, the CLI) within cacheMs', async () => {
    const { key, record } = await service.create({ userId: 'alice', role: 'user' });
    await service.authenticate(key);
    await store.revoke(record.id, nowMs);
    nowMs += 4999;
    await expect(service.authenticate(key)).resolves.toMatchObject({ keyId: record.id });
    nowMs += 2;
    expect((await rejectionOf(service.authenticate(key))).code).toBe('api_key_revoked');
  });

  it('with cacheMs 0, asks the store every time', async () => {
    const uncached = createKeyService({ keys: store, now: () => nowMs, cacheMs: 0 });
    const { key } = await uncached.create({ userId: 'alice', role: 'user' });
    const get = vi.spyOn(store, 'get');
    for (let index = 0; index < 3; index++) await uncached.authenticate(key);
    expect(get).toHaveBeenCalledTimes(3);
  });
});
