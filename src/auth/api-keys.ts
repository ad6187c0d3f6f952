// Sluice API keys: minting them, checking a presented key against its stored hash, and installing
// the first admin key. A key is `sk-sluice-<id>-<secret>`; only the id and a SHA-256 of the secret
// are stored, so a leaked database does not leak working keys.
import { createHash, hash, randomBytes as nodeRandomBytes, timingSafeEqual } from 'node:crypto';
import { SluiceError } from '../errors/sluice-error.js';
import type { ApiKeyRecord, KeyStore } from '../store/store.js';
import type { Limits, Principal, Role } from '../contract/principal.js';
import { describeInvalidUserId, isValidUserId } from './user-id.js';
import { modelPatternsSchema } from './model-allowlist.js';

/** Every Sluice key starts with this; `both` mode routes on it and secret scanners can match it. */
export const apiKeyPrefix = 'sk-sluice-';

const idAlphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
const idLength = 12;
const secretBytes = 32;
// 32 bytes in unpadded base64url are 43 characters. The id has a fixed length, so the `-` that
// base64url may put inside the secret never makes the split ambiguous.
const apiKeyPattern = /^sk-sluice-([a-z0-9]{12})-([A-Za-z0-9_-]{43})$/;
const expectedForm = 'sk-sluice-<12 lowercase letters or digits>-<43 base64url characters>';

/** Returns `size` cryptographically random bytes. */
export type RandomBytes = (size: number) => Uint8Array;

export interface KeyServiceOptions {
  readonly keys: KeyStore;
  /** Milliseconds since the epoch; decides `createdAt` and whether a key has expired. */
  readonly now: () => number;
  /** Defaults to `crypto.randomBytes`; tests pass a seeded one. */
  readonly randomBytes?: RandomBytes;
  /**
   * How long a looked-up key record is reused, in ms (default 5000; 0 turns the cache off).
   * Without it every request paid a database query (kysely prepares each statement anew: about
   * 6% of the gateway's CPU in the benchmark). A key revoked through this service is dropped at
   * once; one revoked elsewhere (another node, the CLI on a running gateway) stops working
   * within this time.
   */
  readonly cacheMs?: number;
}

/** At most this many key records are cached; the oldest go first. */
const maxCachedKeys = 10_000;

export interface CreateKeyInput {
  readonly userId: string;
  readonly role: Role;
  /** A label for people (`ci`, `web front end`). */
  readonly name?: string;
  readonly limits?: Limits;
  /** Model patterns the key may use (`chat`, `spark-*`, `openai/*`); absent: every model. */
  readonly models?: readonly string[];
  /** Milliseconds since the epoch; must be in the future. Absent: the key never expires. */
  readonly expiresAt?: number;
}

export interface CreatedKey {
  /** The whole key. It exists only here: show it once, it cannot be recovered later. */
  readonly key: string;
  readonly record: ApiKeyRecord;
}

export interface ImportKeyInput extends Omit<CreateKeyInput, 'expiresAt'> {
  /** A well-formed key chosen outside Sluice (SLUICE_ADMIN_KEY); its hash is stored. */
  readonly key: string;
}

export interface KeyService {
  /**
   * Mints a key and stores its record. Fails with `invalid_request` (param `userId`, `models` or
   * `expiresAt`) when the user id is malformed, the model list is not 1 to 100 valid patterns, or
   * the expiry is not in the future.
   */
  create(input: CreateKeyInput): Promise<CreatedKey>;
  /**
   * Stores the record for a key that was generated elsewhere. Throws an Error when the key is not
   * in Sluice's format; fails in the store when its id is taken.
   */
  importKey(input: ImportKeyInput): Promise<ApiKeyRecord>;
  /**
   * The first key of a store: imports `input.key` when given (as importKey does), else mints one,
   * and stores it only if the store holds no key at all. Resolves to the key, or undefined when
   * the store already had one (another node, starting at the same moment, may just have installed
   * its own); safe to race across processes (see KeyStore.createIfEmpty).
   */
  createFirst(input: Omit<CreateKeyInput, 'expiresAt'> & { readonly key?: string }): Promise<CreatedKey | undefined>;
  /**
   * Resolves a presented key to its principal (`via: 'key'`). Fails with `invalid_api_key` (bad
   * format, unknown id or wrong secret, the last two with one message so ids cannot be probed),
   * `api_key_revoked` or `api_key_expired`.
   */
  authenticate(token: string): Promise<Principal>;
  /** How many keys the store holds, revoked ones included. */
  count(): Promise<number>;
  /** Revokes the key now; false when there is no such key or it was already revoked. */
  revoke(id: string): Promise<boolean>;
}

/** True when `token` has the exact shape of a Sluice API key (it says nothing about validity). */
export function isApiKeyFormat(token: string): boolean {
  return apiKeyPattern.test(token);
}

/**
 * Lowercase hex SHA-256 of the secret part, hashed as the ASCII text it is in the key. A fast hash
 * is enough: the secret has 256 bits of entropy, so there is nothing for a slow hash to stretch.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

// Compared against when the id is unknown, so an unknown id costs the same hash-and-compare as a
// wrong secret.
const decoyHash = Buffer.alloc(32);

interface KeyEntry {
  readonly record: ApiKeyRecord;
  readonly principal: Principal;
  readonly until: number;
  /** `record.secretHash` as bytes, decoded once per cached record instead of on every request. */
  readonly storedHash: Buffer;
}

function principalOf(record: ApiKeyRecord): Principal {
  return {
    userId: record.userId,
    role: record.role,
    via: 'key',
    keyId: record.id,
    keyLimits: record.limits,
    ...(record.models !== undefined && record.models.length > 0 ? { allowedModels: record.models } : {}),
  };
}

/** Creates the key service over a store. Does no I/O until a method is called. */
export function createKeyService(options: KeyServiceOptions): KeyService {
  const { keys, now } = options;
  const random = options.randomBytes ?? nodeRandomBytes;
  const cacheMs = options.cacheMs ?? 5000;
  /**
   * Each cached record with its principal, made once: every request and every held connection
   * authenticated by one key shares one (read-only) Principal object.
   */
  const cache = new Map<string, KeyEntry>();

  /** The cached entry of `id` while it is fresh: in the same turn, with no promise (decision 0046). */
  function cached(id: string): KeyEntry | undefined {
    const found = cache.get(id);
    return found && found.until > now() ? found : undefined;
  }

  async function lookup(id: string): Promise<KeyEntry | undefined> {
    const record = await keys.get(id);
    cache.delete(id);
    if (!record) return undefined;
    const entry = { record, principal: principalOf(record), until: now() + cacheMs, storedHash: Buffer.from(record.secretHash, 'hex') };
    if (cacheMs > 0) {
      if (cache.size >= maxCachedKeys) cache.delete(cache.keys().next().value ?? '');
      cache.set(id, entry);
    }
    return entry;
  }

  function newId(): string {
    // Rejection sampling: 256 is not a multiple of 36, and `byte % 36` alone would make a–d
    // slightly likelier. Bytes of 252 and above are skipped.
    let id = '';
    for (let draws = 0; draws < 16 && id.length < idLength; draws += 1) {
      for (const byte of random(idLength * 2)) {
        if (byte < 252) id += idAlphabet.charAt(byte % 36);
        if (id.length === idLength) break;
      }
    }
    if (id.length < idLength) throw new Error('randomBytes kept returning bytes >= 252; it is not a random source.');
    return id;
  }

  function checkUserId(userId: string): void {
    if (!isValidUserId(userId)) {
      throw new SluiceError('invalid_request', { param: 'userId', message: `The key's userId is not valid: ${describeInvalidUserId(userId)}. Use 1 to 128 letters, digits and . _ @ : -.` });
    }
  }

  function checkModels(models: readonly string[] | undefined): void {
    if (models === undefined) return;
    const result = modelPatternsSchema.safeParse(models);
    if (result.success) return;
    const issue = result.error.issues[0];
    const param = `models${issue?.path.map((index) => `[${String(index)}]`).join('') ?? ''}`;
    throw new SluiceError('invalid_request', { param, message: `The key's ${param} ${issue?.message ?? 'is invalid'}.` });
  }

  function buildRecord(id: string, secret: string, input: Omit<CreateKeyInput, 'expiresAt'>, expiresAt: number | undefined): ApiKeyRecord {
    return {
      id,
      userId: input.userId,
      role: input.role,
      ...(input.name !== undefined ? { name: input.name } : {}),
      secretHash: hashSecret(secret),
      limits: { ...input.limits },
      ...(input.models !== undefined ? { models: [...input.models] } : {}),
      createdAt: now(),
      ...(expiresAt !== undefined ? { expiresAt } : {}),
    };
  }

  function importedRecord(input: ImportKeyInput): ApiKeyRecord {
    const match = apiKeyPattern.exec(input.key);
    if (!match?.[1] || !match[2]) throw new Error(`The key to import is not a Sluice API key; it must look like ${expectedForm}.`);
    checkUserId(input.userId);
    checkModels(input.models);
    return buildRecord(match[1], match[2], input, undefined);
  }

  return {
    async create(input) {
      checkUserId(input.userId);
      checkModels(input.models);
      if (input.expiresAt !== undefined && !(Number.isFinite(input.expiresAt) && input.expiresAt > now())) {
        throw new SluiceError('invalid_request', { param: 'expiresAt', message: 'expiresAt must be a time in the future (milliseconds since the epoch); leave it out for a key that never expires.' });
      }
      const id = newId();
      const secret = Buffer.from(random(secretBytes)).toString('base64url');
      const record = buildRecord(id, secret, input, input.expiresAt);
      await keys.create(record);
      return { key: `${apiKeyPrefix}${id}-${secret}`, record };
    },

    async importKey(input) {
      const record = importedRecord(input);
      await keys.create(record);
      return record;
    },

    async createFirst(input) {
      checkUserId(input.userId);
      const key = input.key ?? `${apiKeyPrefix}${newId()}-${Buffer.from(random(secretBytes)).toString('base64url')}`;
      const record = importedRecord({ ...input, key });
      return (await keys.createIfEmpty(record)) ? { key, record } : undefined;
    },

    async authenticate(token) {
      const match = apiKeyPattern.exec(token);
      if (!match?.[1] || !match[2]) {
        throw new SluiceError('invalid_api_key', { message: `The API key is malformed: Sluice keys look like ${expectedForm}. Copy the whole key exactly as it was shown when it was created.` });
      }
      const [, id, secret] = match;
      const entry = cached(id) ?? (await lookup(id));
      const record = entry?.record;
      // One-shot hash: no Hash object per request (docs/decisions/0025-per-request-path.md).
      const presented = hash('sha256', secret, 'buffer');
      const stored = entry ? entry.storedHash : decoyHash;
      // timingSafeEqual throws on a length mismatch; a corrupt stored hash must fail like a wrong
      // secret, still after one full comparison.
      const usable = stored.length === presented.length;
      const equal = timingSafeEqual(presented, usable ? stored : decoyHash);
      if (!entry || !record || !usable || !equal) {
        throw new SluiceError('invalid_api_key', { message: 'The API key is not valid: no key with this id and secret exists. Check that the whole key was copied, or ask an admin for a new one.' });
      }
      // From here on the caller has proved they hold the key, so naming its id and state leaks nothing.
      if (record.revokedAt !== undefined) {
        throw new SluiceError('api_key_revoked', { message: `The API key ${record.id} was revoked at ${new Date(record.revokedAt).toISOString()}; ask an admin for a new key.` });
      }
      if (record.expiresAt !== undefined && record.expiresAt <= now()) {
        throw new SluiceError('api_key_expired', { message: `The API key ${record.id} expired at ${new Date(record.expiresAt).toISOString()}; ask an admin for a new key.` });
      }
      return entry.principal;
    },

    count() {
      return keys.count();
    },

    async revoke(id) {
      cache.delete(id);
      return keys.revoke(id, now());
    },
  };
}

export interface EnsureAdminKeyOptions {
  /**
   * SLUICE_ADMIN_KEY: a key in Sluice's own format, chosen by the operator, to install instead of
   * a generated one. Any other string is refused (see `ensureAdminKey`).
   */
  readonly presetKey?: string;
}

export interface EnsuredAdminKey {
  /** The admin key that now works. */
  readonly created: string;
  readonly keyId: string;
  /**
   * `generated`: Sluice made it and nobody has seen it, so print it once. `preset`: it came from
   * SLUICE_ADMIN_KEY; the operator already has it and it should not be written to logs.
   */
  readonly source: 'generated' | 'preset';
}

/**
 * On first start (a store with no keys at all, revoked ones included), installs one admin key for
 * user `admin` and returns it; otherwise does nothing and returns undefined.
 *
 * With `presetKey`, that key's hash is stored, so the operator's chosen key works. It must be in
 * Sluice's format: an arbitrary long string is refused rather than hashed under a fixed id,
 * because in auth mode `both` anything without the `sk-sluice-` prefix is routed to the JWT
 * verifier and would never reach the key check. A malformed preset is reported even when keys
 * already exist, so a typo does not lie dormant until the database is reset.
 *
 * Several nodes starting at once on an empty store install one key between them: the first to
 * reach the store installs its key and gets it back; the others get undefined, so only one of them
 * prints a generated key, and with a shared SLUICE_ADMIN_KEY the others simply go on (their key is
 * the one installed).
 */
export async function ensureAdminKey(service: KeyService, options: EnsureAdminKeyOptions = {}): Promise<EnsuredAdminKey | undefined> {
  const { presetKey } = options;
  if (presetKey !== undefined && !isApiKeyFormat(presetKey)) {
    throw new Error(
      `SLUICE_ADMIN_KEY is not a Sluice API key: it must look like ${expectedForm} (sk-sluice-, 12 characters of a-z and 0-9, a dash, then 32 random bytes in base64url). ` +
        'Generate one with `sluice keys create --role admin`, or leave SLUICE_ADMIN_KEY unset and Sluice prints a new admin key on first start.',
    );
  }
  // The common case (keys exist) without a write transaction; createFirst decides the race.
  if ((await service.count()) > 0) return undefined;
  const installed = await service.createFirst(
    presetKey !== undefined ? { key: presetKey, userId: 'admin', role: 'admin', name: 'admin (SLUICE_ADMIN_KEY)' } : { userId: 'admin', role: 'admin', name: 'admin (first start)' },
  );
  if (installed === undefined) return undefined;
  return { created: installed.key, keyId: installed.record.id, source: presetKey !== undefined ? 'preset' : 'generated' };
}
