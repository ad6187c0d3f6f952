// The `anthropic` provider: the Messages API, streamed and not, with tools.
import type { CallContext, ChatRequest, ProviderAdapter, PushedEvents } from '../../contract/provider.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import type { AdapterDependencies } from '../definition.js';
import { providerPool, readJsonResponse, retryAfterSeconds } from '../shared/http-client.js';
import { streamHttpUpstream, type UpstreamAnswer } from '../shared/http-upstream.js';
import { cancellationOf } from '../shared/cancellation.js';
import type { ResolvedAnthropicProvider } from './config.js';
import { buildRequest } from './request.js';
import { anthropicError, parseErrorDetail } from './errors.js';
import { decodeMessage, messageStreamDecoder } from './stream.js';

export function createAnthropicAdapter(config: ResolvedAnthropicProvider, dependencies: AdapterDependencies): ProviderAdapter {
  const { dispatcher, close } = providerPool(config, dependencies.outboundProxy, dependencies.dispatcher);
  const secrets = [...config.apiKeys, ...Object.values(config.headers ?? {})];
  const provider = config.id;

  function stream(request: ChatRequest, context: CallContext): PushedEvents {
    return streamHttpUpstream({
      provider,
      dispatcher,
      cancellation: cancellationOf(context),
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
      decode: (response) => (context.mode === 'stream' ? messageStreamDecoder({ maxEventBytes: config.maxEventBytes, provider, secrets }) : readMessage(response)),
    });
  }

  async function readMessage(response: UpstreamAnswer): Promise<StreamEvent[]> {
    const { json } = await readJsonResponse(response.body, config.maxEventBytes, provider);
    return decodeMessage(json, { provider, secrets });
  }

  return {
    id: provider,
    type: 'anthropic',
    models: config.models ?? [],
    stream,
    close,
  };
}
