// iFlytek Spark over WebSocket: the HMAC-SHA256 signed URL (docs/providers/spark.md, "Signed
// URL") and the one request frame sent after the socket opens.
import { createHmac } from 'node:crypto';
import type { ResolvedSparkProvider } from './config.js';
import { SluiceError } from '../../errors/sluice-error.js';
import type { ChatMessage, ChatRequest } from '../../contract/provider.js';

/** Model name → path and `domain`, the documented versions; config may add or override. */
export const knownVersions: Readonly<Record<string, { path: string; domain: string }>> = {
  lite: { path: '/v1.1/chat', domain: 'lite' },
  general: { path: '/v1.1/chat', domain: 'general' },
  generalv2: { path: '/v2.1/chat', domain: 'generalv2' },
  generalv3: { path: '/v3.1/chat', domain: 'generalv3' },
  'pro-128k': { path: '/chat/pro-128k', domain: 'pro-128k' },
  'generalv3.5': { path: '/v3.5/chat', domain: 'generalv3.5' },
  'max-32k': { path: '/chat/max-32k', domain: 'max-32k' },
  '4.0Ultra': { path: '/v4.0/chat', domain: '4.0Ultra' },
};

export interface SignInput {
  apiKey: string;
  apiSecret: string;
  host: string;
  path: string;
  /** RFC 1123, e.g. `Fri, 05 May 2023 10:43:39 GMT` (what Date#toUTCString gives). */
  date: string;
}

/** The signature and the `authorization` query value, exactly as iFlytek documents them. */
export function signSparkRequest(input: SignInput): { signature: string; authorization: string } {
  const origin = `host: ${input.host}\ndate: ${input.date}\nGET ${input.path} HTTP/1.1`;
  const signature = createHmac('sha256', input.apiSecret).update(origin).digest('base64');
  const authorizationOrigin = `api_key="${input.apiKey}", algorithm="hmac-sha256", headers="host date request-line", signature="${signature}"`;
  return { signature, authorization: Buffer.from(authorizationOrigin).toString('base64') };
}

export function resolveVersion(provider: ResolvedSparkProvider, model: string): { path: string; domain: string } {
  const version = provider.versions?.[model] ?? knownVersions[model];
  if (!version) {
    throw new SluiceError('model_not_found', {
      param: 'model',
      message: `Spark provider "${provider.id}" knows no model "${model}"; use one of ${Object.keys({ ...knownVersions, ...provider.versions }).join(', ')} or add it under versions.`,
    });
  }
  return version;
}

export function signedUrl(provider: ResolvedSparkProvider, path: string, now: number): string {
  const base = new URL(provider.baseUrl);
  const date = new Date(now).toUTCString();
  const { authorization } = signSparkRequest({ apiKey: provider.apiKey, apiSecret: provider.apiSecret, host: base.host, path, date });
  const query = new URLSearchParams({ authorization, date, host: base.host });
  return `${base.protocol}//${base.host}${path}?${query.toString()}`;
}

/** `uid` must be at most 32 characters: longer caller ids are cut, an absent one is "sluice". */
export function requestFrame(provider: ResolvedSparkProvider, request: ChatRequest, domain: string): string {
  const params = request.params;
  const chat: Record<string, unknown> = { domain };
  if (typeof params['temperature'] === 'number') chat['temperature'] = params['temperature'];
  const maxTokens = params['max_completion_tokens'] ?? params['max_tokens'];
  if (typeof maxTokens === 'number') chat['max_tokens'] = maxTokens;
  if (typeof params['top_k'] === 'number') chat['top_k'] = params['top_k'];
  if (typeof params['chat_id'] === 'string') chat['chat_id'] = params['chat_id'];
  const user = typeof params['user'] === 'string' ? params['user'] : request.userId;
  return JSON.stringify({
    header: { app_id: provider.appId, uid: (user ?? 'sluice').slice(0, 32) },
    parameter: { chat },
    payload: { message: { text: request.messages.map(toSparkText) } },
  });
}

function toSparkText(message: ChatMessage, index: number): { role: string; content: string } {
  const role = message.role === 'developer' ? 'system' : message.role;
  if (role !== 'system' && role !== 'user' && role !== 'assistant') {
    throw new SluiceError('invalid_request', { param: `messages[${index.toString()}].role`, message: `messages[${index.toString()}].role: Spark accepts system, user and assistant turns, not "${role}".` });
  }
  const content = typeof message.content === 'string' ? message.content : (message.content ?? []).map((part) => (typeof part['text'] === 'string' ? part['text'] : '')).join('');
  return { role, content };
}
