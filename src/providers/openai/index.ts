// The `openai` provider: any OpenAI-compatible chat completions API (OpenAI, DeepSeek, Qwen
// compatible mode, Zhipu, Moonshot, vLLM, Ollama, Qianfan v2, Spark HTTP, …).
import type { CallContext, ChatRequest, EmbeddingContext, EmbeddingRequest, EmbeddingResult, ProviderAdapter, PushedEvents } from '../../contract/provider.js';
import type { AdapterDependencies } from '../definition.js';
import { providerPool } from '../shared/http-client.js';
import { streamHttpUpstream } from '../shared/http-upstream.js';
import { cancellationOf } from '../shared/cancellation.js';
import type { ResolvedOpenAiProvider } from './config.js';
import { buildRequest } from './request.js';
import { createOpenAiAnswerReader } from './answer.js';
import { sendEmbeddings } from './embeddings.js';

export function createOpenAiAdapter(config: ResolvedOpenAiProvider, dependencies: AdapterDependencies): ProviderAdapter {
  const { dispatcher, close } = providerPool(config, dependencies.outboundProxy, dependencies.dispatcher);
  const secrets = [...config.apiKeys, ...Object.values(config.headers ?? {})].filter((value): value is string => Boolean(value));
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
    const headers: Record<string, string> = { ...config.headers, 'content-type': 'application/json', accept: 'application/json' };
    // The key the pool chose for this call (docs/pools.md), else the entry's first.
    const apiKey = context.apiKey ?? config.apiKeys[0];
    if (apiKey) headers['authorization'] = `Bearer ${apiKey}`;
    return sendEmbeddings({ provider, dispatcher, url: `${config.baseUrl.replace(/\/+$/, '')}/embeddings`, headers, mapErrorResponse: answer.mapErrorResponse }, request, context);
  }

  return {
    id: provider,
    type: 'openai',
    models: config.models ?? [],
    stream,
    embed,
    close,
  };
}
