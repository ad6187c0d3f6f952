// Builds an Azure OpenAI chat completions request: OpenAI's body and headers, sent to the
// deployment's URL with `api-version` in the query and the key in `api-key` (no Authorization).
import type { CallContext, ChatRequest } from '../../contract/provider.js';
import type { OutboundRequest } from '../shared/http-upstream.js';
import { chatCompletionsBody, chatCompletionsHeaders } from '../openai/request.js';
import type { ResolvedAzureProvider } from './config.js';

/** The deployment that serves `model`: the configured one, else the model's own name. */
export function deploymentFor(provider: ResolvedAzureProvider, model: string): string {
  return provider.deployments?.[model] ?? model;
}

export function buildRequest(provider: ResolvedAzureProvider, request: ChatRequest, context: CallContext): OutboundRequest {
  const deployment = encodeURIComponent(deploymentFor(provider, request.model));
  const query = new URLSearchParams({ 'api-version': provider.apiVersion });
  const headers = chatCompletionsHeaders(provider.headers, context);
  headers['api-key'] = provider.apiKey;
  return {
    url: `${provider.endpoint.replace(/\/+$/, '')}/openai/deployments/${deployment}/chat/completions?${query.toString()}`,
    headers,
    // The deployment picks the model; the `model` field in the body is ignored by Azure.
    body: chatCompletionsBody(request, context),
  };
}

/** The deployment's embeddings URL (`…/openai/deployments/<deployment>/embeddings?api-version=…`). */
export function embeddingsUrl(provider: ResolvedAzureProvider, model: string): string {
  const query = new URLSearchParams({ 'api-version': provider.apiVersion });
  return `${provider.endpoint.replace(/\/+$/, '')}/openai/deployments/${encodeURIComponent(deploymentFor(provider, model))}/embeddings?${query.toString()}`;
}
