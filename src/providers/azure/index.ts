// The `azure` provider: Azure OpenAI chat completions. Only the request is its own; the answer and
// its errors are OpenAI's format and are read by the openai provider's reader.
import type { CallContext, ChatRequest, EmbeddingContext, EmbeddingRequest, EmbeddingResult, ProviderAdapter, PushedEvents } from '../../contract/provider.js';
import type { AdapterDependencies } from '../definition.js';
import { providerPool } from '../shared/http-client.js';
import { streamHttpUpstream } from '../shared/http-upstream.js';
import { cancellationOf } from '../shared/cancellation.js';
import { createOpenAiAnswerReader } from '../openai/answer.js';
import type { ResolvedAzureProvider } from './config.js';
import { sendEmbeddings } from '../openai/embeddings.js';
import { buildRequest, embeddingsUrl } from './request.js';

export function createAzureAdapter(config: ResolvedAzureProvider, dependencies: AdapterDependencies): ProviderAdapter {
  const { dispatcher, close } = providerPool(config, dependencies.outboundProxy, dependencies.dispatcher);
  const secrets = [...config.apiKeys, ...Object.values(config.headers ?? {})];
  const provider = config.id;
  const answer = createOpenAiAnswerReader({ provider, secrets, maxEventBytes: config.maxEventBytes, now: dependencies.now });

  // The shell's push form as it is, not a generator around it (decision 0034).
  function stream(request: ChatRequest, context: CallContext): PushedEvents {
    return streamHttpUpstream({
      provider,
      dispatcher,
      cancellation: cancellationOf(context),
      traceparent: context.traceparent,
      request: buildRequest(config, request, context),
      upstreamModel: request.model,
      mapErrorResponse: answer.mapErrorResponse,
      decode: (response) => answer.decode(response, context),
    });
  }

  function embed(request: EmbeddingRequest, context: EmbeddingContext): Promise<EmbeddingResult> {
    // As for chat: the key in `api-key`, no Authorization header.
    const headers: Record<string, string> = { ...config.headers, 'content-type': 'application/json', accept: 'application/json', 'api-key': context.apiKey ?? config.apiKeys[0] ?? '' };
    return sendEmbeddings({ provider, dispatcher, url: embeddingsUrl(config, request.model), headers, mapErrorResponse: answer.mapErrorResponse }, request, context);
  }

  return {
    id: provider,
    type: 'azure',
    embed,
    models: config.models ?? Object.keys(config.deployments ?? {}),
    stream,
    close,
  };
}
