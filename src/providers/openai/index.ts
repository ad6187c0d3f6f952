// The `openai` provider: any OpenAI-compatible chat completions API (OpenAI, DeepSeek, Qwen
// compatible mode, Zhipu, Moonshot, vLLM, Ollama, Qianfan v2, Spark HTTP, …).
import type { CallContext, ChatRequest, ProviderAdapter } from '../../contract/provider.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import type { AdapterDependencies } from '../definition.js';
import { providerPool } from '../shared/http-client.js';
import { streamHttpUpstream } from '../shared/http-upstream.js';
import type { ResolvedOpenAiProvider } from './config.js';
import { buildRequest } from './request.js';
import { createOpenAiAnswerReader } from './answer.js';

export function createOpenAiAdapter(config: ResolvedOpenAiProvider, dependencies: AdapterDependencies): ProviderAdapter {
  const { dispatcher, close } = providerPool(config, dependencies.outboundProxy, dependencies.dispatcher);
  const secrets = [...config.apiKeys, ...Object.values(config.headers ?? {})].filter((value): value is string => Boolean(value));
  const provider = config.id;
  const answer = createOpenAiAnswerReader({ provider, secrets, maxEventBytes: config.maxEventBytes, now: dependencies.now });

  async function* stream(request: ChatRequest, context: CallContext): AsyncGenerator<readonly StreamEvent[]> {
    yield* streamHttpUpstream({
      provider,
      dispatcher,
      signal: context.signal,
      request: buildRequest(config, request, context),
      upstreamModel: request.model,
      mapErrorResponse: answer.mapErrorResponse,
      decode: (response) => answer.decode(response, context),
    });
  }

  return {
    id: provider,
    type: 'openai',
    models: config.models ?? [],
    stream,
    close,
  };
}
