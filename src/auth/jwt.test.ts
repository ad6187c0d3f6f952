import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SluiceError } from '../errors/sluice-error.js';
import { createJwtVerifier, isJwtFormat, type JwtOptions } from './jwt.js';

const nowMs = Date.UTC(2025, 0, 1, 12);
const nowSeconds = nowMs / 1000;
const secret = 'a-shared-secret-of-at-least-32-characters!';

const baseOptions: JwtOptions = { userClaim: 'sub', roleClaim: 'role', defaultRole: 'user', clockToleranceSeconds: 5 };

async function rejectionOf(promise: Promise<unknown>): Promise<SluiceError> {
  const error: unknown = await promise.then(() => undefined, (reason: unknown) => reason);
  if (!(error instanceof SluiceError)) throw new Error(`expected a SluiceError, got ${String(error)}`);
  return error;
}

function hs256(claims: JWTPayload, key = secret, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).sign(new TextEncoder().encode(key));
}

const hsVerifier = (options: Partial<JwtOptions> = {}) => createJwtVerifier({ ...baseOptions, secret, ...options }, { now: () => nowMs });

describe('HS256 shared secret', () => {
  it('turns a good token into a jwt principal with the default role and no key limits', async () => {
    const token = await hs256({ sub: 'alice', exp: nowSeconds + 60 });
    expect(isJwtFormat(token)).toBe(true);
    await expect(hsVerifier().verify(token)).resolves.toEqual({ userId: 'alice', role: 'user', via: 'jwt', keyLimits: {} });
  });

  it('maps the role claim, and reads user and role from the configured claims', async () => {
    const verifier = hsVerifier({ userClaim: 'email', roleClaim: 'sluice_role', defaultRole: 'service' });
    await expect(verifier.verify(await hs256({ email: 'ops@example.com', sluice_role: 'admin' }))).resolves.toMatchObject({ userId: 'ops@example.com', role: 'admin' });
    await expect(verifier.verify(await hs256({ email: 'bot@example.com' }))).resolves.toMatchObject({ role: 'service' });
    const unknownRole = await rejectionOf(verifier.verify(await hs256({ email: 'x@example.com', sluice_role: 'superuser' })));
    expect(unknownRole.code).toBe('invalid_token');
    expect(unknownRole.message).toContain('"sluice_role"');
    const nonString = await rejectionOf(verifier.verify(await hs256({ email: 'x@example.com', sluice_role: ['admin'] })));
    expect(nonString.code).toBe('invalid_token');
  });

  it('reads the models claim as an array or a space-separated string into allowedModels', async () => {
    const verifier = hsVerifier({ modelsClaim: 'models' });
    await expect(verifier.verify(await hs256({ sub: 'alice', models: ['chat', 'openai/*'] }))).resolves.toMatchObject({ allowedModels: ['chat', 'openai/*'] });
    await expect(verifier.verify(await hs256({ sub: 'alice', models: ' chat  spark-* ' }))).resolves.toMatchObject({ allowedModels: ['chat', 'spark-*'] });
    const configured = hsVerifier({ modelsClaim: 'https://sluice.example/models' });
    await expect(configured.verify(await hs256({ sub: 'alice', 'https://sluice.example/models': 'chat' }))).resolves.toMatchObject({ allowedModels: ['chat'] });
  });

  it('lets a token without the models claim, or with an empty one, use every model', async () => {
    const verifier = hsVerifier({ modelsClaim: 'models' });
    for (const claims of [{ sub: 'alice' }, { sub: 'alice', models: [] }, { sub: 'alice', models: ' ' }] as JWTPayload[]) {
      expect(await verifier.verify(await hs256(claims))).not.toHaveProperty('allowedModels');
    }
  });

  it('refuses a models claim of another shape or with a bad pattern instead of allowing every model', async () => {
    const verifier = hsVerifier({ modelsClaim: 'models' });
    for (const models of [42, { chat: true }, ['chat', 7], ['chat?'], Array.from({ length: 101 }, () => 'x')]) {
      const error = await rejectionOf(verifier.verify(await hs256({ sub: 'alice', models })));
      expect(error.code).toBe('invalid_token');
      expect(error.message).toContain('"models" claim must list model patterns');
    }
  });

  it('reads no models claim when none is configured', async () => {
    expect(await hsVerifier().verify(await hs256({ sub: 'alice', models: ['chat'] }))).not.toHaveProperty('allowedModels');
  });

  it('refuses a token without the user claim, naming the claim', async () => {
    for (const claims of [{}, { sub: '' }, { sub: 42 }] as JWTPayload[]) {
      const error = await rejectionOf(hsVerifier().verify(await hs256(claims)));
      expect(error.code).toBe('invalid_token');
      expect(error.message).toContain('"sub" claim');
    }
  });

  it('refuses a token signed with another secret as a bad signature', async () => {
    const error = await rejectionOf(hsVerifier().verify(await hs256({ sub: 'alice' }, 'another-secret-that-is-also-32-characters-long')));
    expect(error.code).toBe('invalid_token');
    expect(error.message).toMatch(/signature does not verify/);
    expect(error.message).not.toContain(secret);
  });

  it('refuses an expired token and says when it expired, allowing the configured clock skew', async () => {
    const expired = await rejectionOf(hsVerifier().verify(await hs256({ sub: 'alice', exp: nowSeconds - 60 })));
    expect(expired.code).toBe('invalid_token');
    expect(expired.message).toContain('expired at 2025-01-01T11:59:00.000Z');
    await expect(hsVerifier().verify(await hs256({ sub: 'alice', exp: nowSeconds - 3 }))).resolves.toMatchObject({ userId: 'alice' });
  });

  it('refuses a token that is not valid yet', async () => {
    const error = await rejectionOf(hsVerifier().verify(await hs256({ sub: 'alice', nbf: nowSeconds + 600 })));
    expect(error.message).toMatch(/not valid yet.*2025-01-01T12:10:00.000Z/);
  });

  it('refuses the wrong issuer and a missing one', async () => {
    const verifier = hsVerifier({ issuer: 'https://login.example.com' });
    await expect(verifier.verify(await hs256({ sub: 'alice', iss: 'https://login.example.com' }))).resolves.toMatchObject({ userId: 'alice' });
    expect((await rejectionOf(verifier.verify(await hs256({ sub: 'alice', iss: 'https://evil.example' })))).message).toMatch(/wrong issuer.*https:\/\/login\.example\.com/);
    expect((await rejectionOf(verifier.verify(await hs256({ sub: 'alice' })))).message).toMatch(/no "iss" claim/);
  });

  it('refuses the wrong audience and accepts an audience list that contains ours', async () => {
    const verifier = hsVerifier({ audience: 'sluice' });
    await expect(verifier.verify(await hs256({ sub: 'alice', aud: ['other', 'sluice'] }))).resolves.toMatchObject({ userId: 'alice' });
    expect((await rejectionOf(verifier.verify(await hs256({ sub: 'alice', aud: 'other' })))).message).toMatch(/wrong audience.*"sluice"/);
  });

  it('refuses another algorithm: HS512, alg none, and a token that is not a JWT', async () => {
    const hs512 = await rejectionOf(hsVerifier().verify(await hs256({ sub: 'alice' }, secret, 'HS512')));
    expect(hs512.message).toMatch(/unexpected algorithm "HS512".*only HS256/);
    const unsecured = await rejectionOf(hsVerifier().verify(new UnsecuredJWT({ sub: 'alice' }).encode()));
    expect(unsecured.message).toMatch(/unexpected algorithm "none"/);
    const malformed = await rejectionOf(hsVerifier().verify('not-a.jwt'));
    expect(malformed.code).toBe('invalid_token');
    expect(malformed.message).toMatch(/not a well-formed JWT/);
  });

  it('checks its options once, at construction', () => {
    expect(() => createJwtVerifier(baseOptions)).toThrow(/exactly one of secret/);
    expect(() => createJwtVerifier({ ...baseOptions, secret, jwksUrl: 'https://login.example.com/jwks' })).toThrow(/exactly one of secret/);
    expect(() => createJwtVerifier({ ...baseOptions, secret: 'short' })).toThrow(/at least 32 characters/);
    expect(() => createJwtVerifier({ ...baseOptions, jwksUrl: 'ftp://login.example.com/jwks' })).toThrow(/http\(s\)/);
    expect(() => createJwtVerifier({ ...baseOptions, secret, modelsClaim: '' })).toThrow(/modelsClaim must name a claim/);
  });
});

interface SigningKey {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256';
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

async function signingKey(alg: 'RS256' | 'ES256', kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

function signWith(key: SigningKey, claims: JWTPayload, kid: string = key.kid): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid }).sign(key.privateKey);
}

describe('JWKS from a real HTTP server', () => {
  let server: Server;
  let jwksUrl: string;
  let published: JWK[] = [];
  let status = 200;
  let fetches = 0;
  let rsaOld: SigningKey;
  let rsaNew: SigningKey;
  let ec: SigningKey;

  beforeAll(async () => {
    [rsaOld, rsaNew, ec] = await Promise.all([signingKey('RS256', 'rsa-2024'), signingKey('RS256', 'rsa-2025'), signingKey('ES256', 'ec-1')]);
    server = createServer((_request, response) => {
      fetches += 1;
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port.toString()}/.well-known/jwks.json`;
  });

  beforeEach(() => {
    status = 200;
    fetches = 0;
  });

  afterAll(async () => {
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  });

  function publish(...keys: SigningKey[]): void {
    published = keys.map((key) => key.publicJwk);
  }

  // jose refetches on an unknown kid only once the cooldown after the last fetch has passed; 0 lets
  // a rotation test refetch at once instead of waiting out the 30 s default.
  const jwksVerifier = (jwksCooldownMs?: number) => createJwtVerifier({ ...baseOptions, jwksUrl }, { now: () => nowMs, ...(jwksCooldownMs !== undefined ? { jwksCooldownMs } : {}) });

  it('verifies RS256 and ES256 tokens with keys fetched once and cached', async () => {
    publish(rsaOld, ec);
    const verifier = jwksVerifier();
    await expect(verifier.verify(await signWith(rsaOld, { sub: 'alice', role: 'service' }))).resolves.toEqual({ userId: 'alice', role: 'service', via: 'jwt', keyLimits: {} });
    await expect(verifier.verify(await signWith(ec, { sub: 'bob' }))).resolves.toMatchObject({ userId: 'bob', role: 'user' });
    expect(fetches).toBe(1);
  });

  it('follows a key rotation: refetches on the new kid, then refuses the retired and the never-seen kid', async () => {
    publish(rsaOld);
    const verifier = jwksVerifier(0);
    await expect(verifier.verify(await signWith(rsaOld, { sub: 'alice' }))).resolves.toMatchObject({ userId: 'alice' });
    expect(fetches).toBe(1);

    publish(rsaNew);
    await expect(verifier.verify(await signWith(rsaNew, { sub: 'alice' }))).resolves.toMatchObject({ userId: 'alice' });
    expect(fetches).toBe(2);

    const retired = await rejectionOf(verifier.verify(await signWith(rsaOld, { sub: 'alice' })));
    expect(retired.message).toMatch(/unknown key \(kid "rsa-2024"\)/);
    const neverSeen = await rejectionOf(verifier.verify(await signWith(rsaNew, { sub: 'alice' }, 'kid-nobody-published')));
    expect(neverSeen.code).toBe('invalid_token');
    expect(neverSeen.message).toMatch(/unknown key \(kid "kid-nobody-published"\)/);
    expect(fetches).toBe(4);
  });

  it('does not refetch for unknown kids during the cooldown, so forged kids cannot flood the identity provider', async () => {
    publish(rsaOld);
    const verifier = jwksVerifier();
    await verifier.verify(await signWith(rsaOld, { sub: 'alice' }));
    for (let attempt = 0; attempt < 3; attempt += 1) {
      expect((await rejectionOf(verifier.verify(await signWith(rsaOld, { sub: 'alice' }, `forged-${attempt.toString()}`)))).code).toBe('invalid_token');
    }
    expect(fetches).toBe(1);
  });

  it('refuses a token signed by a key with a published kid but a different private key', async () => {
    publish(rsaOld);
    const impostor = await signingKey('RS256', 'rsa-2024');
    const error = await rejectionOf(jwksVerifier().verify(await signWith(impostor, { sub: 'alice' })));
    expect(error.message).toMatch(/signature does not verify/);
  });

  it('refuses HS256 in JWKS mode, so the public key cannot be used as an HMAC secret', async () => {
    publish(rsaOld);
    const error = await rejectionOf(jwksVerifier().verify(await hs256({ sub: 'alice' })));
    expect(error.message).toMatch(/unexpected algorithm "HS256".*only RS256 and ES256/);
  });

  it('reports an unreachable key set as the gateway\'s failure, not a bad token', async () => {
    publish(rsaOld);
    status = 500;
    const error = await rejectionOf(jwksVerifier().verify(await signWith(rsaOld, { sub: 'alice' })));
    expect(error.code).toBe('identity_provider_unavailable');
    expect(error.retryable).toBe(true);
  });
});
