// Builds the upstream request for an OpenAI-compatible chat completions endpoint. The body and the
// plain headers are shared with the providers that take OpenAI's format at another URL (azure).
import type { CallContext, ChatRequest } from '../../contract/provider.js';
import type { OutboundRequest } from '../shared/http-upstream.js';
import type { ResolvedOpenAiProvider } from './config.js';

export function buildRequest(provider: ResolvedOpenAiProvider, request: ChatRequest, context: CallContext): OutboundRequest {
  const headers = chatCompletionsHeaders(provider.headers, context);
  // The key the pool router chose, else the entry's first; none for an upstream that needs none (Ollama).
  const apiKey = context.apiKey ?? provider.apiKeys[0];
  if (apiKey) headers['authorization'] = `Bearer ${apiKey}`;
  return { url: `${provider.baseUrl.replace(/\/+$/, '')}/chat/completions`, headers, body: chatCompletionsBody(request, context) };
}

/** The JSON body: the client's fields, the model, the messages, and `stream` as the mode says. */
export function chatCompletionsBody(request: ChatRequest, context: CallContext): string {
  const stream = context.mode === 'stream';
  const body: Record<string, unknown> = { ...request.params, model: request.model, messages: request.messages, stream };
  if (stream) {
    // Always ask for usage: accounting needs it even when the client did not ask for it.
    const clientOptions = typeof request.params['stream_options'] === 'object' ? request.params['stream_options'] : {};
    body['stream_options'] = { ...clientOptions, include_usage: true };
  } else {
    delete body['stream_options'];
  }
  return JSON.stringify(body);
}

/** The configured extra headers and the content headers; authentication is the caller's to add. */
export function chatCompletionsHeaders(extraHeaders: Readonly<Record<string, string>> | undefined, context: CallContext): Record<string, string> {
  return {
    ...extraHeaders,
    'content-type': 'application/json',
    accept: context.mode === 'stream' ? 'text/event-stream' : 'application/json',
    'x-request-id': context.requestId,
  };
}
