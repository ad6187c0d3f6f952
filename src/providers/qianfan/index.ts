// The `qianfan` provider: Baidu ERNIE chat (wenxinworkshop), with its OAuth access token.
import type { ResolvedQianfanProvider } from './config.js';
import type { CallContext, ChatRequest, ProviderAdapter } from '../../contract/provider.js';
import type { AdapterDependencies } from '../definition.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { providerPool, readBodyText, sendUpstream, transportError } from '../shared/http-client.js';
import { readSseEvents } from '../shared/sse-reader.js';
import { SluiceError } from '../../errors/sluice-error.js';
import { chatUrl, knownEndpoints, requestBody } from './request.js';
import { qianfanError, qianfanErrorOf, tokenErrorCodes } from './errors.js';
import { decodeResult, decodeResultStream } from './stream.js';
import { createTokenSource } from './token.js';

export function createQianfanAdapter(config: ResolvedQianfanProvider, dependencies: AdapterDependencies): ProviderAdapter {
  const { dispatcher: pool, close } = providerPool(config, dependencies.outboundProxy, dependencies.dispatcher);
  const provider = config.id;
  const secrets = [config.apiKey, config.secretKey];
  const tokens = createTokenSource({ baseUrl: config.baseUrl, apiKey: config.apiKey, secretKey: config.secretKey, provider, dispatcher: pool, now: dependencies.now });

  async function* stream(request: ChatRequest, context: CallContext): AsyncGenerator<readonly StreamEvent[]> {
    const body = requestBody(request, context);
    for (let attempt = 0; ; attempt++) {
      const token = await tokens.get(context.signal);
      const response = await sendUpstream({ url: chatUrl(config, request.model, token), headers: { 'content-type': 'application/json' }, body, signal: context.signal, dispatcher: pool, provider });
      const decodeOptions = { provider, secrets: [...secrets, token] };
      try {
        const contentType = String(response.headers['content-type'] ?? '');
        // Errors come as a JSON body, often with HTTP 200; read it whole before deciding.
        if (response.statusCode !== 200 || !contentType.includes('text/event-stream')) {
          const text = await readBodyText(response.body, config.maxEventBytes);
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          const error = qianfanErrorOf(json);
          if (error && tokenErrorCodes.has(error.code) && attempt === 0) {
            tokens.invalidate(token);
            continue;
          }
          if (error) throw qianfanError(error.code, error.message, provider, decodeOptions.secrets);
          if (response.statusCode !== 200) {
            throw new SluiceError(response.statusCode >= 500 ? 'upstream_error' : 'upstream_bad_request', { provider, upstreamStatus: response.statusCode, message: `Provider "${provider}" (Qianfan) answered ${response.statusCode.toString()}.` });
          }
          yield [{ type: 'start', upstreamModel: request.model }];
          yield decodeResult(text, decodeOptions);
          return;
        }
        yield [{ type: 'start', upstreamModel: request.model }];
        yield* decodeResultStream(readSseEvents(response.body, { maxEventBytes: config.maxEventBytes, provider }), decodeOptions);
        return;
      } catch (error) {
        throw transportError(error, context.signal, provider);
      } finally {
        if (!response.body.destroyed) response.body.destroy();
      }
    }
  }

  return {
    id: provider,
    type: 'qianfan',
    models: config.models ?? Object.keys({ ...knownEndpoints, ...config.endpoints }),
    stream,
    close,
  };
}
