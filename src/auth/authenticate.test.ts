import { SignJWT, type JWTPayload } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SluiceError } from '../errors/sluice-error.js';
import type { Store } from '../store/store.js';
import { createStore } from '../store/create-store.js';
import { createKeyService, type KeyService } from './api-keys.js';
import { actFor, createAuthenticator, defaultAnonymousPrincipal, type AuthMode, type AuthenticationInput } from './authenticate.js';
import { createJwtVerifier, type JwtVerifier } from './jwt.js';
import { upstreamUserId, type Principal } from '../contract/principal.js';
import { createMemoryTicketStore, type TicketStore } from './tickets.js';

async function rejectionOf(promise: Promise<unknown>): Promise<SluiceError> {
  const error: unknown = await promise.then(() => undefined, (reason: unknown) => reason);
  if (!(error instanceof SluiceError)) throw new Error(`expected a SluiceError, got ${String(error)}`);
  return error;
}

const nowMs = Date.UTC(2025, 0, 1);
const secret = 'a-shared-secret-of-at-least-32-characters!';
const signJwt = (claims: JWTPayload) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));

let keys: KeyService;
let jwt: JwtVerifier;
let tickets: TicketStore;
let userKey: string;
let serviceKey: string;
let serviceKeyId: string;

let store: Store;

beforeEach(async () => {
  // The real store, in memory: the authenticator is tested against what the gateway runs.
  store = await createStore('sqlite::memory:');
  keys = createKeyService({ keys: store.keys, now: () => nowMs });
  jwt = createJwtVerifier({ secret, userClaim: 'sub', roleClaim: 'role', defaultRole: 'user', clockToleranceSeconds: 0 }, { now: () => nowMs });
  tickets = createMemoryTicketStore({ now: () => nowMs });
  userKey = (await keys.create({ userId: 'alice', role: 'user' })).key;
  const service = await keys.create({ userId: 'web-backend', role: 'service' });
  serviceKey = service.key;
  serviceKeyId = service.record.id;
});
afterEach(async () => {
  await store.close();
});

function authenticator(mode: AuthMode, anonymousPrincipal?: Principal) {
  return createAuthenticator({ mode, keys, jwt, tickets, ...(anonymousPrincipal ? { anonymousPrincipal } : {}) });
}

const request = (input: Partial<AuthenticationInput>): AuthenticationInput => ({ authorization: undefined, ticket: undefined, actAs: undefined, ...input });

describe('modes', () => {
  it('keys: accepts an API key and refuses a JWT saying JWT is not enabled', async () => {
    const auth = authenticator('keys');
    await expect(auth.authenticate(request({ authorization: `Bearer ${userKey}` }))).resolves.toMatchObject({ userId: 'alice', via: 'key' });
    const error = await rejectionOf(auth.authenticate(request({ authorization: `Bearer ${await signJwt({ sub: 'bob' })}` })));
    expect(error.code).toBe('invalid_api_key');
    expect(error.message).toMatch(/JWT sign-in is not enabled/);
    expect((await rejectionOf(auth.authenticate(request({ authorization: 'Bearer some-opaque-token' })))).code).toBe('invalid_api_key');
  });

  it('jwt: accepts a JWT and refuses an API key saying keys are not enabled', async () => {
    const auth = authenticator('jwt');
    await expect(auth.authenticate(request({ authorization: `Bearer ${await signJwt({ sub: 'bob' })}` }))).resolves.toMatchObject({ userId: 'bob', via: 'jwt' });
    const error = await rejectionOf(auth.authenticate(request({ authorization: `Bearer ${userKey}` })));
    expect(error.code).toBe('invalid_token');
    expect(error.message).toMatch(/API keys are not enabled/);
  });

  it('both: routes sk-sluice- tokens to the key service and everything else to the JWT verifier', async () => {
    const auth = authenticator('both');
    await expect(auth.authenticate(request({ authorization: `Bearer ${userKey}` }))).resolves.toMatchObject({ userId: 'alice', via: 'key' });
    await expect(auth.authenticate(request({ authorization: `Bearer ${await signJwt({ sub: 'bob' })}` }))).resolves.toMatchObject({ userId: 'bob', via: 'jwt' });
    // A truncated key gets the key service's explanation, not a confusing JWT one.
    expect((await rejectionOf(auth.authenticate(request({ authorization: `Bearer ${userKey.slice(0, 30)}` })))).code).toBe('invalid_api_key');
    expect((await rejectionOf(auth.authenticate(request({ authorization: 'Bearer not-a-jwt' })))).code).toBe('invalid_token');
  });

  it('none: everyone is the anonymous user, whatever Authorization says', async () => {
    const auth = authenticator('none');
    await expect(auth.authenticate(request({}))).resolves.toEqual({ userId: 'anonymous', role: 'user', via: 'anonymous', keyLimits: {} });
    await expect(auth.authenticate(request({ authorization: 'Basic abc' }))).resolves.toBe(defaultAnonymousPrincipal);
    const custom: Principal = { userId: 'dev', role: 'service', via: 'anonymous', keyLimits: {} };
    await expect(authenticator('none', custom).authenticate(request({}))).resolves.toBe(custom);
  });

  it('none: X-Sluice-User names the caller, validated, even though the anonymous role is user', async () => {
    const auth = authenticator('none');
    const named = await auth.authenticate(request({ actAs: 'carol@example.com' }));
    expect(named).toEqual({ userId: 'carol@example.com', role: 'user', via: 'anonymous', keyLimits: {}, actingAs: 'anonymous' });
    expect(upstreamUserId(named)).toBe('carol@example.com');
    expect(upstreamUserId(await auth.authenticate(request({})))).toBeUndefined();
    expect(await rejectionOf(auth.authenticate(request({ actAs: 'carol smith' })))).toMatchObject({ code: 'invalid_request', param: 'X-Sluice-User' });
  });

  it('refuses to start without the service its mode needs', () => {
    expect(() => createAuthenticator({ mode: 'keys', tickets })).toThrow(/needs a key service/);
    expect(() => createAuthenticator({ mode: 'both', keys, tickets })).toThrow(/needs a JWT verifier/);
    expect(() => createAuthenticator({ mode: 'none', tickets })).not.toThrow();
  });
});

describe('the Authorization header', () => {
  it('missing: missing_credentials with the expected form', async () => {
    const error = await rejectionOf(authenticator('keys').authenticate(request({})));
    expect(error.code).toBe('missing_credentials');
    expect(error.message).toContain('Authorization: Bearer <key>');
    expect((await rejectionOf(authenticator('keys').authenticate(request({ authorization: '   ' })))).code).toBe('missing_credentials');
  });

  it.each([
    ['Basic abc', /uses the "basic" scheme/],
    ['Bearer', /carries no token/],
    ['Bearer ', /carries no token/],
    ['Bearer  x y', /one token with no spaces/],
    ['Bearer x,y', /one token with no spaces/],
    ['Bearerx', /does not start with "Bearer "/],
  ])('malformed %j: missing_credentials naming the expected form', async (authorization, reason) => {
    const error = await rejectionOf(authenticator('both').authenticate(request({ authorization })));
    expect(error.code).toBe('missing_credentials');
    expect(error.message).toMatch(reason);
    expect(error.message).toContain('Authorization: Bearer <key or token>');
  });

  it('never echoes a key sent without the Bearer scheme', async () => {
    const error = await rejectionOf(authenticator('keys').authenticate(request({ authorization: `${userKey} extra` })));
    expect(error.code).toBe('missing_credentials');
    expect(error.message).not.toContain(userKey.slice(10));
  });

  it('accepts the scheme in any case (RFC 7235) and several spaces before the token (RFC 6750)', async () => {
    const auth = authenticator('keys');
    for (const authorization of [`bearer ${userKey}`, `BEARER ${userKey}`, `Bearer   ${userKey}`, ` Bearer ${userKey}\t`]) {
      await expect(auth.authenticate(request({ authorization }))).resolves.toMatchObject({ userId: 'alice' });
    }
  });
});

describe('tickets', () => {
  it('a ticket stands for the principal that asked for it, marked via ticket, and wins over Authorization', async () => {
    const keyPrincipal = await keys.authenticate(serviceKey);
    const { ticket } = await tickets.issue(keyPrincipal, 30_000);
    const principal = await authenticator('keys').authenticate(request({ ticket, authorization: `Bearer ${userKey}` }));
    expect(principal).toEqual({ ...keyPrincipal, via: 'ticket', keyId: serviceKeyId });
  });

  it('a bad ticket is refused even when a good Authorization header is present', async () => {
    const error = await rejectionOf(authenticator('keys').authenticate(request({ ticket: 'x'.repeat(43), authorization: `Bearer ${userKey}` })));
    expect(error.code).toBe('invalid_ticket');
  });

  it('tickets work in mode none, carrying the name the caller gave', async () => {
    const auth = authenticator('none');
    const named = await auth.authenticate(request({ actAs: 'carol' }));
    const { ticket } = await tickets.issue(named, 30_000);
    await expect(auth.authenticate(request({ ticket }))).resolves.toMatchObject({ userId: 'carol', via: 'ticket' });
  });
});

describe('acting for a user', () => {
  it('a service key acts for the user named in X-Sluice-User', async () => {
    const principal = await authenticator('keys').authenticate(request({ authorization: `Bearer ${serviceKey}`, actAs: 'alice' }));
    expect(principal).toMatchObject({ userId: 'alice', actingAs: 'web-backend', role: 'service', via: 'key', keyId: serviceKeyId });
  });

  it('a user key cannot act for another user, but may name itself', async () => {
    const auth = authenticator('keys');
    const error = await rejectionOf(auth.authenticate(request({ authorization: `Bearer ${userKey}`, actAs: 'bob' })));
    expect(error.code).toBe('forbidden');
    expect(error.message).toMatch(/cannot act for another user.*use a service key/);
    const self = await auth.authenticate(request({ authorization: `Bearer ${userKey}`, actAs: 'alice' }));
    expect(self).toEqual(await keys.authenticate(userKey));
  });

  it('a user JWT cannot act for another user either', async () => {
    const error = await rejectionOf(authenticator('jwt').authenticate(request({ authorization: `Bearer ${await signJwt({ sub: 'bob' })}`, actAs: 'alice' })));
    expect(error.code).toBe('forbidden');
  });

  it('admin and service principals may act; actingAs stays the credential\'s own user across hops', () => {
    const admin: Principal = { userId: 'admin', role: 'admin', via: 'key', keyId: 'k1', keyLimits: {} };
    const asAlice = actFor(admin, 'alice');
    expect(asAlice).toEqual({ ...admin, userId: 'alice', actingAs: 'admin' });
    expect(actFor(asAlice, 'bob')).toEqual({ ...admin, userId: 'bob', actingAs: 'admin' });
    expect(actFor(asAlice, 'alice')).toBe(asAlice);
    // Naming the credential's own user again ends the delegation.
    expect(actFor(asAlice, 'admin')).toEqual(admin);
  });

  it('a service credential acting for a user keeps its own model allowlist, whoever it names', () => {
    const service: Principal = { userId: 'backend', role: 'service', via: 'key', keyId: 'k2', keyLimits: {}, allowedModels: ['chat'] };
    expect(actFor(service, 'alice').allowedModels).toEqual(['chat']);
    expect(actFor(actFor(service, 'alice'), 'backend').allowedModels).toEqual(['chat']);
  });

  it('validates the user id: 1 to 128 of A-Za-z0-9._@:-, the param naming where it came from', () => {
    const service: Principal = { userId: 'svc', role: 'service', via: 'key', keyLimits: {} };
    expect(actFor(service, `${'a'.repeat(119)}.b_c@d:e-`).userId).toHaveLength(128);
    for (const userId of ['', 'a'.repeat(129), 'alice smith', 'alice/bob', 'ålice', 'a\nb']) {
      expect(() => actFor(service, userId)).toThrow(expect.objectContaining({ code: 'invalid_request', param: 'X-Sluice-User' }) as Error);
    }
    expect(() => actFor(service, '', 'user')).toThrow(expect.objectContaining({ code: 'invalid_request', param: 'user', message: expect.stringMatching(/^user is not a valid user id: it is empty/) as string }) as Error);
  });
});
