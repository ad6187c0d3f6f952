// The `anthropic` provider: the Messages API, streamed and not, with tools.
import type { ResolvedAnthropicProvider } from './config.js';
import type { CallContext, ChatRequest, ProviderAdapter } from '../../contract/provider.js';
import type { AdapterDependencies } from '../definition.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { providerPool, readBodyText, readJsonResponse, retryAfterSeconds, sendUpstream, transportError } from '../shared/http-client.js';
import { readSseEvents } from '../shared/sse-reader.js';
import { buildRequest } from './request.js';
import { anthropicError, parseErrorDetail } from './errors.js';
import { decodeMessage, decodeMessageStream } from './stream.js';

export function createAnthropicAdapter(config: ResolvedAnthropicProvider, dependencies: AdapterDependencies): ProviderAdapter {
  const { dispatcher: pool, close } = providerPool(config, dependencies.outboundProxy, dependencies.dispatcher);
  const secrets = [config.apiKey, ...Object.values(config.headers ?? {})];
  const provider = config.id;

  async function* stream(request: ChatRequest, context: CallContext): AsyncGenerator<readonly StreamEvent[]> {
    const built = buildRequest(config, request, context);
    const response = await sendUpstream({ ...built, signal: context.signal, dispatcher: pool, provider });
    try {
      if (response.statusCode !== 200) {
        const text = await readBodyText(response.body);
        throw anthropicError({
          status: response.statusCode,
          detail: parseErrorDetail(text),
          provider,
          secrets,
          retryAfterSeconds: retryAfterSeconds(response.headers['retry-after'], dependencies.now()),
        });
      }
      yield [{ type: 'start', upstreamModel: request.model }];
      if (context.mode === 'stream') {
        yield* decodeMessageStream(readSseEvents(response.body, { maxEventBytes: config.maxEventBytes, provider }), { provider, secrets });
      } else {
        const { json } = await readJsonResponse(response.body, config.maxEventBytes, provider);
        yield decodeMessage(json, { provider, secrets });
      }
    } catch (error) {
      throw transportError(error, context.signal, provider);
    } finally {
      if (!response.body.destroyed) response.body.destroy();
    }
  }

  return {
    id: provider,
    type: 'anthropic',
    models: config.models ?? [],
    stream,
    close,
  };
}
