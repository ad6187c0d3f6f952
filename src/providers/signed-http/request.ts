// Builds the request for a company's own streaming endpoint and signs it with the configured
// scheme. `ak-sk-sha256` (a company-internal convention, docs/providers/signed-http.md):
// requestTime = epoch ms, signature = lowercase hex SHA-256 of ak + sk + requestTime + body, the
// body exactly as sent.
import { createHash } from 'node:crypto';
import type { ResolvedSignedHttpProvider } from './config.js';
import type { ChatRequest } from '../../contract/provider.js';
import type { OutboundRequest } from '../shared/http-upstream.js';

export function signAkSk(ak: string, sk: string, requestTime: string, body: string): string {
  return createHash('sha256').update(ak + sk + requestTime + body, 'utf8').digest('hex');
}

/**
 * The body: the request's fields (messages and sampling parameters, as the client sent them)
 * with the caller's user id added under `userIdField`. Decision: the OpenAI-compatible route has
 * no body of the endpoint's own shape, so it sends the chat request itself; the native API
 * (a later issue) passes its client's body through.
 */
export function buildRequest(provider: ResolvedSignedHttpProvider, request: ChatRequest, now: number): OutboundRequest {
  const fields: Record<string, unknown> = { ...request.params, messages: request.messages };
  if (request.model) fields['model'] = request.model;
  const user = typeof request.params['user'] === 'string' ? request.params['user'] : request.userId;
  if (user) fields[provider.userIdField] = user;
  const body = JSON.stringify(fields);
  const headers: Record<string, string> = {
    ...provider.headers,
    'content-type': 'application/json;charset=UTF-8',
    accept: 'text/event-stream',
  };
  const auth = provider.auth;
  switch (auth.scheme) {
    case 'bearer':
      headers['authorization'] = `Bearer ${auth.key}`;
      break;
    case 'header':
      headers[auth.name.toLowerCase()] = auth.key;
      break;
    case 'ak-sk-sha256': {
      const requestTime = now.toString();
      headers['account'] = auth.ak;
      headers['requestTime'] = requestTime;
      headers['signature'] = signAkSk(auth.ak, auth.sk, requestTime, body);
      break;
    }
    case 'none':
      break;
  }
  return { url: provider.url, headers, body };
}

/** The secrets of the configured scheme, to keep out of messages. */
export function secretsOf(provider: ResolvedSignedHttpProvider): string[] {
  const auth = provider.auth;
  if (auth.scheme === 'bearer' || auth.scheme === 'header') return [auth.key];
  if (auth.scheme === 'ak-sk-sha256') return [auth.sk];
  return [];
}
