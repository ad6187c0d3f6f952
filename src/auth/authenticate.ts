// The one place a request's credential becomes a principal: a ticket, an `Authorization: Bearer`
// API key or JWT (per the configured mode), or nobody at all in mode `none`; then, when the caller
// names an end user, the rule for who may act for whom.
import { SluiceError } from '../errors/sluice-error.js';
import { apiKeyPrefix, type KeyService } from './api-keys.js';
import { isJwtFormat, type JwtVerifier } from './jwt.js';
import type { Principal } from '../contract/principal.js';
import type { TicketStore } from './tickets.js';
import { describeInvalidUserId, isValidUserId } from './user-id.js';

/**
 * `keys`: Sluice API keys only. `jwt`: bearer JWTs only. `both`: a token starting with
 * `sk-sluice-` is an API key, anything else a JWT. `none`: no credential is checked (local
 * development on loopback).
 */
export type AuthMode = 'keys' | 'jwt' | 'both' | 'none';

/** The header a service credential names its end user with. */
export const actAsHeader = 'X-Sluice-User';

/** Who a caller is in mode `none` when the options name nobody else. */
export const defaultAnonymousPrincipal: Principal = Object.freeze({ userId: 'anonymous', role: 'user', via: 'anonymous', keyLimits: Object.freeze({}) });

export interface AuthenticatorOptions {
  readonly mode: AuthMode;
  /** Required in modes `keys` and `both`. */
  readonly keys?: KeyService;
  /** Required in modes `jwt` and `both`. */
  readonly jwt?: JwtVerifier;
  readonly tickets: TicketStore;
  /** The principal of every caller in mode `none`; defaults to `defaultAnonymousPrincipal`. */
  readonly anonymousPrincipal?: Principal;
}

export interface AuthenticationInput {
  /** The raw `Authorization` header. */
  readonly authorization: string | undefined;
  /** The `?ticket=` query parameter, on the routes that accept one. */
  readonly ticket: string | undefined;
  /** The raw `X-Sluice-User` header. */
  readonly actAs: string | undefined;
}

export interface Authenticator {
  readonly mode: AuthMode;
  /**
   * Resolves the request's credential to a principal.
   *
   * - A ticket, when given, is redeemed (in every mode) and wins over any Authorization header;
   *   the result has `via: 'ticket'` and keeps the issuing key's id.
   * - Otherwise `Authorization: Bearer <token>` is required (scheme case-insensitive, RFC 7235
   *   §2.1; one or more spaces before the token, RFC 6750 §2.1). Absent or malformed:
   *   `missing_credentials` with the expected form. The token then goes to the key service or the
   *   JWT verifier, and their errors pass through.
   * - Mode `none` ignores Authorization and returns the anonymous principal. There `X-Sluice-User`
   *   is trusted as the caller naming themselves, whatever the anonymous principal's role (nothing
   *   is protected, and it lets a local playground keep per-user history): it is validated, and
   *   the result has `actingAs` set to the anonymous user id.
   * - In the other modes `X-Sluice-User` goes through `actFor`.
   */
  authenticate(input: AuthenticationInput): Promise<Principal>;
}

const bearerPattern = /^bearer(?: +(.*))?$/i;
// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const b64tokenPattern = /^[A-Za-z0-9\-._~+/]+=*$/;
// Schemes safe to name back to the caller. Anything else may be a bare token pasted without a
// scheme, which must not be echoed into an error body or a log.
const knownSchemes = new Set(['basic', 'digest', 'negotiate', 'ntlm', 'token', 'apikey', 'hoba', 'mutual', 'aws4-hmac-sha256']);

/**
 * Checks the options once and returns the authenticator. Throws an Error when the mode needs a
 * key service or JWT verifier that was not given.
 */
export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const { mode, keys, jwt, tickets } = options;
  const anonymous = options.anonymousPrincipal ?? defaultAnonymousPrincipal;
  if ((mode === 'keys' || mode === 'both') && !keys) throw new Error(`Auth mode "${mode}" needs a key service.`);
  if ((mode === 'jwt' || mode === 'both') && !jwt) throw new Error(`Auth mode "${mode}" needs a JWT verifier (auth.jwt settings).`);

  const expectedForm = mode === 'keys' ? 'Authorization: Bearer <key>' : mode === 'jwt' ? 'Authorization: Bearer <token>' : 'Authorization: Bearer <key or token>';

  function bearerToken(authorization: string | undefined): string {
    // RFC 9110 §5.5: leading and trailing whitespace is not part of a field value.
    const value = authorization?.replace(/^[ \t]+|[ \t]+$/g, '');
    if (value === undefined || value === '') {
      throw new SluiceError('missing_credentials', { message: `No credential: send ${expectedForm}.` });
    }
    const match = bearerPattern.exec(value);
    if (!match) {
      const scheme = /^([A-Za-z0-9-]+) /.exec(value)?.[1]?.toLowerCase();
      const said = scheme !== undefined && knownSchemes.has(scheme) ? `uses the "${scheme}" scheme` : 'does not start with "Bearer "';
      throw new SluiceError('missing_credentials', { message: `The Authorization header ${said}; send ${expectedForm}.` });
    }
    const token = match[1];
    if (token === undefined || token === '') {
      throw new SluiceError('missing_credentials', { message: `The Authorization header says Bearer but carries no token; send ${expectedForm}.` });
    }
    if (!b64tokenPattern.test(token)) {
      throw new SluiceError('missing_credentials', { message: `The Authorization header is malformed: after "Bearer " comes one token with no spaces or other separators; send ${expectedForm}.` });
    }
    return token;
  }

  /** Throws its own refusals; the key service's and the verifier's come as rejections. Not async: one promise fewer per request. */
  function fromToken(token: string): Promise<Principal> {
    const isKey = token.startsWith(apiKeyPrefix);
    if (mode === 'keys' || (mode === 'both' && isKey)) {
      if (!isKey && isJwtFormat(token)) {
        throw new SluiceError('invalid_api_key', { message: 'The bearer token looks like a JWT, but JWT sign-in is not enabled on this gateway (auth mode "keys"); send a Sluice API key (sk-sluice-…).' });
      }
      // Both checked at construction; the guards only narrow the types.
      if (!keys) throw new Error('unreachable: no key service');
      return keys.authenticate(token);
    }
    if (isKey) {
      throw new SluiceError('invalid_token', { message: 'The bearer token is a Sluice API key, but API keys are not enabled on this gateway (auth mode "jwt"); send a JWT from the identity provider.' });
    }
    if (!jwt) throw new Error('unreachable: no JWT verifier');
    return jwt.verify(token);
  }

  return {
    mode,
    async authenticate(input) {
      if (input.ticket !== undefined) {
        const principal: Principal = { ...(await tickets.redeem(input.ticket)), via: 'ticket' };
        return input.actAs === undefined ? principal : actFor(principal, input.actAs, actAsHeader);
      }
      if (mode === 'none') {
        if (input.actAs === undefined) return anonymous;
        checkUserId(input.actAs, actAsHeader);
        if (input.actAs === anonymous.userId) return anonymous;
        // actingAs marks the name as chosen by the caller, not proved (upstreamUserId reads it).
        return { ...anonymous, userId: input.actAs, actingAs: anonymous.userId };
      }
      const principal = await fromToken(bearerToken(input.authorization));
      return input.actAs === undefined ? principal : actFor(principal, input.actAs, actAsHeader);
    },
  };
}

function checkUserId(userId: string, param: string): void {
  if (!isValidUserId(userId)) {
    throw new SluiceError('invalid_request', { param, message: `${param} is not a valid user id: ${describeInvalidUserId(userId)}. Use 1 to 128 letters, digits and . _ @ : -.` });
  }
}

/**
 * The principal for `userId` when `principal` acts for them, for X-Sluice-User and the OpenAI body
 * `user` field alike. A service or admin credential may act for anyone: the result has `userId`
 * replaced, the same role and key, and `actingAs` set to the credential's own user id. A user
 * credential may only name itself (the principal comes back unchanged) and otherwise fails with
 * `forbidden`. A malformed `userId` fails with `invalid_request` whose param is `param`
 * (default `X-Sluice-User`).
 */
export function actFor(principal: Principal, userId: string, param: string = actAsHeader): Principal {
  checkUserId(userId, param);
  if (userId === principal.userId) return principal;
  if (principal.role === 'user') {
    throw new SluiceError('forbidden', { param, message: `A user credential cannot act for another user (${param} names someone else); use a service key, or leave ${param} out.` });
  }
  const { actingAs, ...rest } = principal;
  const self = actingAs ?? principal.userId;
  // Naming the credential's own user again ends the delegation rather than acting for oneself.
  return userId === self ? { ...rest, userId } : { ...rest, userId, actingAs: self };
}
