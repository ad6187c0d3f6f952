// Builds the upstream request for an OpenAI-compatible chat completions endpoint.
import type { ResolvedOpenAiProvider } from './config.js';
import type { CallContext, ChatRequest } from '../../contract/provider.js';
import type { OutboundRequest } from '../shared/http-upstream.js';

export function buildRequest(provider: ResolvedOpenAiProvider, request: ChatRequest, context: CallContext): OutboundRequest {
  const stream = context.mode === 'stream';
  const body: Record<string, unknown> = { ...request.params, model: request.model, messages: request.messages, stream };
  if (stream) {
    // Always ask for usage: accounting needs it even when the client did not ask for it.
    const clientOptions = typeof request.params['stream_options'] === 'object' ? request.params['stream_options'] : {};
    body['stream_options'] = { ...clientOptions, include_usage: true };
  } else {
    delete body['stream_options'];
  }
  const headers: Record<string, string> = {
    ...provider.headers,
    'content-type': 'application/json',
    accept: stream ? 'text/event-stream' : 'application/json',
    'x-request-id': context.requestId,
  };
  if (provider.apiKey) headers['authorization'] = `Bearer ${provider.apiKey}`;
  return { url: `${provider.baseUrl.replace(/\/+$/, '')}/chat/completions`, headers, body: JSON.stringify(body) };
}
