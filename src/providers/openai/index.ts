// The `openai` provider: any OpenAI-compatible chat completions API (OpenAI, DeepSeek, Qwen
// compatible mode, Zhipu, Moonshot, vLLM, Ollama, Qianfan v2, Spark HTTP, …).
import type { ResolvedOpenAiProvider } from './config.js';
import type { CallContext, ChatRequest, ProviderAdapter } from '../../contract/provider.js';
import type { AdapterDependencies } from '../definition.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { providerPool, readBodyText, readJsonResponse, retryAfterSeconds, sendUpstream, transportError } from '../shared/http-client.js';
import { readSseEvents } from '../shared/sse-reader.js';
import { buildRequest } from './request.js';
import { parseErrorDetail, statusError } from './errors.js';
import { decodeChunkStream, decodeCompletion } from './stream.js';

export function createOpenAiAdapter(config: ResolvedOpenAiProvider, dependencies: AdapterDependencies): ProviderAdapter {
  const { dispatcher: pool, close } = providerPool(config, dependencies.outboundProxy, dependencies.dispatcher);
  const secrets = [config.apiKey, ...Object.values(config.headers ?? {})].filter((value): value is string => Boolean(value));
  const provider = config.id;

  async function* stream(request: ChatRequest, context: CallContext): AsyncGenerator<readonly StreamEvent[]> {
    const built = buildRequest(config, request, context);
    const response = await sendUpstream({ ...built, signal: context.signal, dispatcher: pool, provider });
    try {
      if (response.statusCode !== 200) {
        const text = await readBodyText(response.body);
        throw statusError({
          status: response.statusCode,
          detail: parseErrorDetail(text),
          provider,
          retryAfterSeconds: retryAfterSeconds(response.headers['retry-after'], dependencies.now()),
          secrets,
        });
      }
      yield [{ type: 'start', upstreamModel: request.model }];
      const contentType = String(response.headers['content-type'] ?? '');
      if (context.mode === 'stream' && !contentType.includes('application/json')) {
        const events = readSseEvents(response.body, { maxEventBytes: config.maxEventBytes, provider });
        yield* decodeChunkStream(events, { provider, secrets });
      } else {
        // Asked for a stream but answered with JSON (some servers ignore `stream`): still fine.
        const { json, text } = await readJsonResponse(response.body, config.maxEventBytes, provider);
        if (typeof json === 'object' && json !== null && 'error' in json) throw statusError({ status: 502, detail: parseErrorDetail(text), provider, secrets });
        yield decodeCompletion(json, { provider, secrets });
      }
    } catch (error) {
      throw transportError(error, context.signal, provider);
    } finally {
      // Ends the upstream request (and frees the pooled socket) on every exit path, early ones
      // included: a consumer that stops iterating lands here through return().
      if (!response.body.destroyed) response.body.destroy();
    }
  }

  return {
    id: provider,
    type: 'openai',
    models: config.models ?? [],
    stream,
    close,
  };
}
