// The `anthropic` provider: the Messages API, streamed and not, with tools.
import type { CallContext, ChatRequest, ProviderAdapter } from '../../contract/provider.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import type { AdapterDependencies } from '../definition.js';
import { providerPool, readJsonResponse, retryAfterSeconds } from '../shared/http-client.js';
import { streamHttpUpstream } from '../shared/http-upstream.js';
import { readSseEvents } from '../shared/sse-reader.js';
import type { ResolvedAnthropicProvider } from './config.js';
import { buildRequest } from './request.js';
import { anthropicError, parseErrorDetail } from './errors.js';
import { decodeMessage, decodeMessageStream } from './stream.js';

export function createAnthropicAdapter(config: ResolvedAnthropicProvider, dependencies: AdapterDependencies): ProviderAdapter {
  const { dispatcher, close } = providerPool(config, dependencies.outboundProxy, dependencies.dispatcher);
  const secrets = [config.apiKey, ...Object.values(config.headers ?? {})];
  const provider = config.id;

  async function* stream(request: ChatRequest, context: CallContext): AsyncGenerator<readonly StreamEvent[]> {
    yield* streamHttpUpstream({
      provider,
      dispatcher,
      signal: context.signal,
      traceparent: context.traceparent,
      request: buildRequest(config, request, context),
      upstreamModel: request.model,
      mapErrorResponse: (response) =>
        anthropicError({
          status: response.status,
          detail: parseErrorDetail(response.text),
          provider,
          secrets,
          retryAfterSeconds: retryAfterSeconds(response.headers['retry-after'], dependencies.now()),
        }),
      async *decode(response) {
        if (context.mode === 'stream') {
          yield* decodeMessageStream(readSseEvents(response.body, { maxEventBytes: config.maxEventBytes, provider }), { provider, secrets });
        } else {
          const { json } = await readJsonResponse(response.body, config.maxEventBytes, provider);
          yield decodeMessage(json, { provider, secrets });
        }
      },
    });
  }

  return {
    id: provider,
    type: 'anthropic',
    models: config.models ?? [],
    stream,
    close,
  };
}
