// Builds an ERNIE chat request: the system prompt in its own field, turns merged so they
// alternate user/assistant, starting and ending with the user (an odd count), as the API demands.
import type { ResolvedQianfanProvider } from './config.js';
import { SluiceError } from '../../errors/sluice-error.js';
import type { CallContext, ChatMessage, ChatRequest } from '../../contract/provider.js';

/** Friendly model names → chat endpoints; any other name is used as the endpoint itself. */
export const knownEndpoints: Readonly<Record<string, string>> = {
  'ernie-4.0-8k': 'completions_pro',
  'ernie-3.5-8k': 'completions',
  'ernie-speed-128k': 'ernie-speed-128k',
  'ernie-lite-8k': 'ernie-lite-8k',
};

export function chatUrl(provider: ResolvedQianfanProvider, model: string, token: string): string {
  const endpoint = provider.endpoints?.[model] ?? knownEndpoints[model] ?? model;
  return `${provider.baseUrl.replace(/\/+$/, '')}/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/${encodeURIComponent(endpoint)}?access_token=${encodeURIComponent(token)}`;
}

export function requestBody(request: ChatRequest, context: CallContext): string {
  const { system, messages } = reshape(request.messages);
  const body: Record<string, unknown> = { messages, stream: context.mode === 'stream' };
  if (system) body['system'] = system;
  const params = request.params;
  for (const key of ['temperature', 'top_p', 'penalty_score'] as const) if (typeof params[key] === 'number') body[key] = params[key];
  const maxTokens = params['max_completion_tokens'] ?? params['max_tokens'];
  if (typeof maxTokens === 'number') body['max_output_tokens'] = maxTokens;
  const stop = params['stop'];
  if (typeof stop === 'string') body['stop'] = [stop];
  else if (Array.isArray(stop)) body['stop'] = stop;
  const user = typeof params['user'] === 'string' ? params['user'] : request.userId;
  if (user) body['user_id'] = user;
  return JSON.stringify(body);
}

export function reshape(input: readonly ChatMessage[]): { system: string; messages: { role: 'user' | 'assistant'; content: string }[] } {
  const system: string[] = [];
  const messages: { role: 'user' | 'assistant'; content: string }[] = [];
  input.forEach((message, index) => {
    const content = typeof message.content === 'string' ? message.content : (message.content ?? []).map((part) => (typeof part['text'] === 'string' ? part['text'] : '')).join('');
    if (message.role === 'system' || message.role === 'developer') {
      system.push(content);
      return;
    }
    if (message.role !== 'user' && message.role !== 'assistant') {
      throw new SluiceError('invalid_request', { param: `messages[${index.toString()}].role`, message: `messages[${index.toString()}].role: ERNIE accepts system, user and assistant turns, not "${message.role}".` });
    }
    const last = messages[messages.length - 1];
    if (last?.role === message.role) last.content += `\n${content}`;
    else messages.push({ role: message.role, content });
  });
  if (messages[0]?.role !== 'user' || messages[messages.length - 1]?.role !== 'user') {
    throw new SluiceError('invalid_request', {
      param: 'messages',
      message: 'messages: ERNIE needs the conversation to start and end with a user turn (after any system messages), alternating with assistant turns.',
    });
  }
  return { system: system.filter(Boolean).join('\n\n'), messages };
}
