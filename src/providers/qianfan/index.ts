// The `qianfan` provider: Baidu ERNIE chat (wenxinworkshop), with its OAuth access token.
import type { CallContext, ChatRequest, ProviderAdapter } from '../../contract/provider.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { SluiceError } from '../../errors/sluice-error.js';
import type { AdapterDependencies } from '../definition.js';
import { providerPool } from '../shared/http-client.js';
import { streamHttpUpstream, type WholeResponse } from '../shared/http-upstream.js';
import { readSseEvents } from '../shared/sse-reader.js';
import type { ResolvedQianfanProvider } from './config.js';
import { chatUrl, knownEndpoints, requestBody } from './request.js';
import { qianfanError, qianfanErrorOf, tokenErrorCodes } from './errors.js';
import { decodeResult, decodeResultStream } from './stream.js';
import { createTokenSource } from './token.js';

export function createQianfanAdapter(config: ResolvedQianfanProvider, dependencies: AdapterDependencies): ProviderAdapter {
  const { dispatcher, close } = providerPool(config, dependencies.outboundProxy, dependencies.dispatcher);
  const provider = config.id;
  const secrets = [config.apiKey, config.secretKey];
  const tokens = createTokenSource({ baseUrl: config.baseUrl, apiKey: config.apiKey, secretKey: config.secretKey, provider, dispatcher, now: dependencies.now });

  async function* stream(request: ChatRequest, context: CallContext): AsyncGenerator<readonly StreamEvent[]> {
    const body = requestBody(request, context);
    for (let attempt = 0; ; attempt++) {
      const token = await tokens.get(context.signal);
      const decodeOptions = { provider, secrets: [...secrets, token] };
      let tokenRefused = false;
      // Errors come as a JSON body, often with HTTP 200, and are read whole before deciding.
      const errorOf = (response: WholeResponse): SluiceError | undefined => {
        const error = qianfanErrorOf(parseJson(response.text));
        if (!error) return undefined;
        tokenRefused = tokenErrorCodes.has(error.code);
        return qianfanError(error.code, error.message, provider, decodeOptions.secrets);
      };
      try {
        yield* streamHttpUpstream({
          provider,
          dispatcher,
          signal: context.signal,
          traceparent: context.traceparent,
          request: { url: chatUrl(config, request.model, token), headers: { 'content-type': 'application/json' }, body },
          upstreamModel: request.model,
          maxWholeBytes: config.maxEventBytes,
          mapErrorResponse: (response) =>
            errorOf(response) ??
            new SluiceError(response.status >= 500 ? 'upstream_error' : 'upstream_bad_request', { provider, upstreamStatus: response.status, message: `Provider "${provider}" (Qianfan) answered ${response.status.toString()}.` }),
          wholeAnswer: {
            when: (response) => !String(response.headers['content-type'] ?? '').includes('text/event-stream'),
            errorOf,
            decode: (response) => decodeResult(response.text, decodeOptions),
          },
          decode: (response) => decodeResultStream(readSseEvents(response.body, { maxEventBytes: config.maxEventBytes, provider }), decodeOptions),
        });
        return;
      } catch (error) {
        // Codes 110/111: the cached token was refused; fetch a new one and try once more.
        if (!tokenRefused || attempt > 0 || context.signal.aborted) throw error;
        tokens.invalidate(token);
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

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
