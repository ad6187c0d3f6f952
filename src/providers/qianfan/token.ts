// The Qianfan OAuth access token: fetched from API key + secret key, cached until shortly before
// it expires, fetched once however many requests need it at the same moment, and refreshed on
// demand after a 110/111 answer.
import type { Dispatcher } from 'undici';
import { SluiceError } from '../../errors/sluice-error.js';
import { readBodyText, sendUpstream } from '../shared/http-client.js';
import { numberAt, stringAt } from '../shared/json.js';

export interface TokenSource {
  /** A valid token; concurrent callers share one fetch. */
  get(signal: AbortSignal): Promise<string>;
  /** Forgets `token` (if it is still the cached one), so the next get() fetches a new one. */
  invalidate(token: string): void;
}

export interface TokenOptions {
  baseUrl: string;
  apiKey: string;
  secretKey: string;
  provider: string;
  dispatcher: Dispatcher;
  now: () => number;
}

/** Renew this long before the reported expiry (tokens live 30 days; clocks and queues vary). */
const renewMarginMs = 60 * 60 * 1000;

export function createTokenSource(options: TokenOptions): TokenSource {
  let cached: { token: string; expiresAt: number } | undefined;
  let pending: Promise<string> | undefined;

  async function fetchToken(signal: AbortSignal): Promise<string> {
    const query = new URLSearchParams({ grant_type: 'client_credentials', client_id: options.apiKey, client_secret: options.secretKey });
    const response = await sendUpstream({
      url: `${options.baseUrl.replace(/\/+$/, '')}/oauth/2.0/token?${query.toString()}`,
      headers: { 'content-type': 'application/json' },
      body: '',
      signal,
      dispatcher: options.dispatcher,
      provider: options.provider,
    });
    const text = await readBodyText(response.body);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const token = stringAt(json, 'access_token');
    if (response.statusCode !== 200 || !token) {
      const reason = stringAt(json, 'error_description') ?? stringAt(json, 'error') ?? `HTTP ${response.statusCode.toString()}`;
      const unavailable = response.statusCode >= 500;
      throw new SluiceError(unavailable ? 'upstream_unavailable' : 'upstream_auth_failed', {
        provider: options.provider,
        upstreamStatus: response.statusCode,
        message: `Provider "${options.provider}" (Qianfan) refused the access-token request (${reason.replaceAll(options.secretKey, '[redacted]')}); check apiKey and secretKey.`,
      });
    }
    const lifetimeMs = (numberAt(json, 'expires_in') ?? 0) * 1000;
    cached = { token, expiresAt: options.now() + Math.max(0, lifetimeMs - Math.min(renewMarginMs, lifetimeMs / 10)) };
    return token;
  }

  return {
    get(signal) {
      if (cached && cached.expiresAt > options.now()) return Promise.resolve(cached.token);
      // One fetch for everyone waiting; it is not tied to the first caller's signal, so one
      // cancelled request cannot fail the others.
      pending ??= fetchToken(new AbortController().signal).finally(() => (pending = undefined));
      return signal.aborted ? Promise.reject(signal.reason as Error) : pending;
    },
    invalidate(token) {
      if (cached?.token === token) cached = undefined;
    },
  };
}
