// Bearer JWTs from an identity provider: checks signature and claims with jose and turns the token
// into a principal. Either a shared HS256 secret or a JWKS URL (RS256/ES256) is trusted, never
// both, so a token's own header can never pick a weaker check.
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyOptions, type JWTVerifyGetKey } from 'jose';
import { SluiceError } from '../errors/sluice-error.js';
import { roles, type Principal, type Role } from '../contract/principal.js';
import { modelPatternsSchema } from './model-allowlist.js';

export interface JwtOptions {
  /** HS256 shared secret, at least 32 characters (RFC 7518 §3.2: a key as long as the hash). */
  secret?: string;
  /** http(s) URL of a JSON Web Key Set; tokens must be RS256 or ES256 and name a key by `kid`. */
  jwksUrl?: string;
  /** When set, the `iss` claim must equal it. */
  issuer?: string;
  /** When set, the `aud` claim must be or contain it. */
  audience?: string;
  /** Top-level claim holding the user id (usually `sub`); must be a non-empty string. */
  userClaim: string;
  /** Top-level claim holding `user`, `service` or `admin`; absent means `defaultRole`. */
  roleClaim: string;
  defaultRole: Role;
  /**
   * Top-level claim holding the model patterns the token may use: an array of strings, or one
   * string of patterns separated by spaces (as OAuth writes `scope`). Absent from the token, or
   * empty: every model. Absent here: no claim is read and tokens may use every model.
   */
  modelsClaim?: string;
  /** Seconds of clock skew allowed on `exp` and `nbf`. */
  clockToleranceSeconds: number;
}

/** Side effects and JWKS cache tuning; production leaves them all at their defaults. */
export interface JwtVerifierDependencies {
  /** Milliseconds since the epoch, for `exp` and `nbf`. Defaults to `Date.now`. */
  readonly now?: () => number;
  /**
   * After a JWKS fetch, how long an unknown `kid` is refused without fetching again, so a flood of
   * forged kids cannot make the gateway hammer the identity provider. jose's default: 30 000 ms.
   * jose measures it with the real clock, not `now`.
   */
  readonly jwksCooldownMs?: number;
  /** How long a fetched JWKS is used before it is fetched again. jose's default: 600 000 ms. */
  readonly jwksCacheMaxAgeMs?: number;
  /** Timeout of one JWKS fetch. jose's default: 5 000 ms. */
  readonly jwksTimeoutMs?: number;
}

export interface JwtVerifier {
  /**
   * Resolves a bearer JWT to its principal (`via: 'jwt'`, no key limits). Fails with
   * `invalid_token` naming the check that failed, or `identity_provider_unavailable` when the JWKS could not be
   * fetched (the token may be fine; the caller may retry).
   */
  verify(token: string): Promise<Principal>;
}

const compactJwtPattern = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** True when `token` has the shape of a compact JWS (three base64url parts); says nothing of validity. */
export function isJwtFormat(token: string): boolean {
  return compactJwtPattern.test(token);
}

function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (roles as readonly string[]).includes(value);
}

function secondsToIso(seconds: unknown): string {
  return typeof seconds === 'number' && Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : 'an unreadable time';
}

function invalidToken(message: string, cause?: unknown): SluiceError {
  return new SluiceError('invalid_token', { message, ...(cause !== undefined ? { cause } : {}) });
}

/**
 * Checks the options once and returns a verifier. Throws an Error when not exactly one of `secret`
 * and `jwksUrl` is set, the secret is shorter than 32 characters, or the URL is not http(s).
 * Does no I/O: the JWKS is fetched on the first token.
 */
export function createJwtVerifier(options: JwtOptions, dependencies: JwtVerifierDependencies = {}): JwtVerifier {
  const { secret, jwksUrl, issuer, audience, userClaim, roleClaim, modelsClaim, defaultRole, clockToleranceSeconds } = options;
  if ((secret === undefined) === (jwksUrl === undefined)) {
    throw new Error('JWT settings need exactly one of secret (HS256) or jwksUrl (RS256/ES256).');
  }
  if (secret !== undefined && secret.length < 32) throw new Error('The JWT secret needs at least 32 characters (256 bits) for HS256.');
  if (userClaim === '' || roleClaim === '' || modelsClaim === '') throw new Error('The JWT userClaim, roleClaim and modelsClaim must name a claim.');
  if (!isRole(defaultRole)) throw new Error(`The JWT defaultRole must be one of ${roles.join(', ')}.`);
  if (!(Number.isFinite(clockToleranceSeconds) && clockToleranceSeconds >= 0)) throw new Error('The JWT clockToleranceSeconds must be zero or more.');

  const now = dependencies.now ?? Date.now;
  const algorithms = secret !== undefined ? ['HS256'] : ['RS256', 'ES256'];
  const key: Uint8Array | JWTVerifyGetKey = secret !== undefined ? new TextEncoder().encode(secret) : remoteKeySet(jwksUrl ?? '', dependencies);

  function verifyOptions(): JWTVerifyOptions {
    return {
      algorithms,
      clockTolerance: clockToleranceSeconds,
      currentDate: new Date(now()),
      ...(issuer !== undefined ? { issuer } : {}),
      ...(audience !== undefined ? { audience } : {}),
    };
  }

  async function verifySignatureAndClaims(token: string): Promise<JWTPayload> {
    const verifyWith = verifyOptions();
    try {
      return (await jwtVerify(token, key, verifyWith)).payload;
    } catch (error) {
      // Several JWKS keys can match a token without a `kid`; jose leaves trying each to the caller.
      if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
      for await (const candidate of error) {
        try {
          return (await jwtVerify(token, candidate, verifyWith)).payload;
        } catch (attempt) {
          if (!(attempt instanceof errors.JWSSignatureVerificationFailed)) throw attempt;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  }

  function explain(error: unknown, token: string): SluiceError {
    if (error instanceof errors.JWTExpired) {
      return invalidToken(`The bearer token expired at ${secondsToIso(error.payload['exp'])}; get a new one from the identity provider.`, error);
    }
    if (error instanceof errors.JWTClaimValidationFailed) {
      const { claim, reason } = error;
      if (reason === 'invalid') return invalidToken(`The bearer token is malformed: its "${claim}" claim is not a number of seconds since the epoch.`, error);
      if (claim === 'nbf') {
        return invalidToken(`The bearer token is not valid yet: its "nbf" (not before) is ${secondsToIso(error.payload['nbf'])}. Check the clocks of the identity provider and the gateway.`, error);
      }
      if (claim === 'iss') {
        return invalidToken(reason === 'missing' ? `The bearer token has no "iss" claim; this gateway accepts only tokens issued by "${issuer ?? ''}".` : `The bearer token has the wrong issuer: this gateway accepts only tokens whose "iss" is "${issuer ?? ''}".`, error);
      }
      if (claim === 'aud') {
        return invalidToken(reason === 'missing' ? `The bearer token has no "aud" claim; this gateway accepts only tokens for audience "${audience ?? ''}".` : `The bearer token has the wrong audience: this gateway accepts only tokens whose "aud" includes "${audience ?? ''}".`, error);
      }
      return invalidToken(`The bearer token failed the "${claim}" claim check.`, error);
    }
    if (error instanceof errors.JWSSignatureVerificationFailed) {
      return invalidToken('The bearer token\'s signature does not verify: it was not signed with a key this gateway trusts, or it was altered.', error);
    }
    if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
      return invalidToken(`The bearer token uses an unexpected algorithm "${headerField(token, 'alg')}"; this gateway accepts only ${algorithms.join(' and ')}.`, error);
    }
    if (error instanceof errors.JWKSNoMatchingKey) {
      const kid = headerField(token, 'kid');
      const named = kid === 'none' ? 'names no key (no "kid" header)' : `names an unknown key (kid "${kid}")`;
      return invalidToken(`The bearer token ${named}: the identity provider's key set has no matching ${headerField(token, 'alg')} key, even after fetching it again. The token was signed with a retired or foreign key.`, error);
    }
    if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
      // jose's messages here describe the shape ("Invalid Compact JWS") and never quote the token.
      return invalidToken(`The bearer token is not a well-formed JWT: ${error.message}. Send the compact form header.payload.signature.`, error);
    }
    // JWKSTimeout, a non-200 or non-JSON JWKS answer, a refused connection: the gateway's own
    // dependency failed, so the caller is not told their token is bad.
    return new SluiceError('identity_provider_unavailable', { message: 'The gateway could not fetch the identity provider\'s key set to check this token; retry shortly.', cause: error });
  }

  return {
    async verify(token) {
      let payload: JWTPayload;
      try {
        payload = await verifySignatureAndClaims(token);
      } catch (error) {
        throw explain(error, token);
      }
      const userId = payload[userClaim];
      if (typeof userId !== 'string' || userId === '') {
        throw invalidToken(`The bearer token has no "${userClaim}" claim naming the user (it must be a non-empty string). Have the identity provider include it, or point the gateway's JWT userClaim setting at the claim it uses.`);
      }
      const roleValue = payload[roleClaim];
      if (roleValue !== undefined && !isRole(roleValue)) {
        throw invalidToken(`The bearer token's "${roleClaim}" claim must be one of ${roles.join(', ')}; leave it out for the default role "${defaultRole}".`);
      }
      const allowedModels = modelsClaim === undefined ? undefined : modelsOf(payload[modelsClaim], modelsClaim);
      return { userId, role: roleValue ?? defaultRole, via: 'jwt', keyLimits: {}, ...(allowedModels !== undefined ? { allowedModels } : {}) };
    },
  };
}

/**
 * The model patterns of a token's models claim; undefined (every model) when the claim is absent
 * or lists nothing. A claim of another shape, or with a pattern a key could not hold, refuses the
 * token rather than letting it use every model.
 */
function modelsOf(value: unknown, claim: string): readonly string[] | undefined {
  const list = typeof value === 'string' ? value.split(' ').filter((pattern) => pattern !== '') : value;
  if (list === undefined || (Array.isArray(list) && list.length === 0)) return undefined;
  const parsed = modelPatternsSchema.safeParse(list);
  if (parsed.success) return parsed.data;
  throw invalidToken(
    `The bearer token's "${claim}" claim must list model patterns (an array of strings, or one string separated by spaces), at most 100, each 1 to 128 characters of A-Z, a-z, 0-9 and . _ : / * @ -; leave it out to allow every model.`,
  );
}

function remoteKeySet(jwksUrl: string, dependencies: JwtVerifierDependencies): JWTVerifyGetKey {
  let url: URL;
  try {
    url = new URL(jwksUrl);
  } catch {
    throw new Error('The JWT jwksUrl is not a URL; use e.g. https://login.example.com/.well-known/jwks.json.');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('The JWT jwksUrl must be an http(s) URL.');
  // jose caches the set, refetches it when a token names a kid it lacks (at most once per
  // cooldown), and shares one in-flight fetch between concurrent requests.
  return createRemoteJWKSet(url, {
    ...(dependencies.jwksCooldownMs !== undefined ? { cooldownDuration: dependencies.jwksCooldownMs } : {}),
    ...(dependencies.jwksCacheMaxAgeMs !== undefined ? { cacheMaxAge: dependencies.jwksCacheMaxAgeMs } : {}),
    ...(dependencies.jwksTimeoutMs !== undefined ? { timeoutDuration: dependencies.jwksTimeoutMs } : {}),
  });
}

/** A header field of a token that may be malformed, for messages; never the signature or payload. */
function headerField(token: string, field: 'alg' | 'kid'): string {
  try {
    const value = decodeProtectedHeader(token)[field];
    // Header values come from the caller; keep them short and printable in messages and logs.
    return typeof value === 'string' ? value.replace(/[^\x20-\x7e]/g, '?').slice(0, 64) : 'none';
  } catch {
    return 'unreadable';
  }
}
