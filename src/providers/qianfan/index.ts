// The `qianfan` provider: Baidu ERNIE chat (wenxinworkshop), with its OAuth access token.
import type { CallContext, ChatRequest, EventSink, ProviderAdapter, PushedEvents } from '../../contract/provider.js';
import { SluiceError } from '../../errors/sluice-error.js';
import type { AdapterDependencies } from '../definition.js';
import { providerPool } from '../shared/http-client.js';
import { streamHttpUpstream, type WholeResponse } from '../shared/http-upstream.js';
import { cancellationOf } from '../shared/cancellation.js';
import type { ResolvedQianfanProvider } from './config.js';
import { chatUrl, knownEndpoints, requestBody } from './request.js';
import { qianfanError, qianfanErrorOf, tokenErrorCodes } from './errors.js';
import { decodeResult, resultStreamDecoder } from './stream.js';
import { createTokenSource } from './token.js';

export function createQianfanAdapter(config: ResolvedQianfanProvider, dependencies: AdapterDependencies): ProviderAdapter {
  const { dispatcher, close } = providerPool(config, dependencies.outboundProxy, dependencies.dispatcher);
  const provider = config.id;
  const secrets = [config.apiKey, config.secretKey];
  const tokens = createTokenSource({ baseUrl: config.baseUrl, apiKey: config.apiKey, secretKey: config.secretKey, provider, dispatcher, now: dependencies.now });

  function stream(request: ChatRequest, context: CallContext): PushedEvents {
    const body = requestBody(request, context);
    return { pushTo: (sink) => void call(request, context, body, sink, 0) };
  }

  /**
   * One call with the cached token. Its errors are read whole before anything is pushed, so when
   * the token was refused (codes 110/111) the call is made once more with a new one, and the sink
   * has seen nothing of the first.
   */
  async function call(request: ChatRequest, context: CallContext, body: string, sink: EventSink, attempt: number): Promise<void> {
    let token: string;
    try {
      token = await tokens.get(context.signal);
    } catch (error) {
      sink.fail(error);
      return;
    }
    const decodeOptions = { provider, secrets: [...secrets, token] };
    let tokenRefused = false;
    // Errors come as a JSON body, often with HTTP 200, and are read whole before deciding.
    const errorOf = (response: WholeResponse): SluiceError | undefined => {
      const error = qianfanErrorOf(parseJson(response.text));
      if (!error) return undefined;
      tokenRefused = tokenErrorCodes.has(error.code);
      return qianfanError(error.code, error.message, provider, decodeOptions.secrets);
    };
    const retrying: EventSink = {
      events: (batch) => sink.events(batch),
      end: () => sink.end(),
      fail: (error) => {
        if (!tokenRefused || attempt > 0 || context.signal.aborted) {
          sink.fail(error);
          return;
        }
        tokens.invalidate(token);
        void call(request, context, body, sink, attempt + 1);
      },
    };
    streamHttpUpstream({
      provider,
      dispatcher,
      cancellation: cancellationOf(context),
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
      decode: () => resultStreamDecoder({ ...decodeOptions, maxEventBytes: config.maxEventBytes }),
    }).pushTo(attempt === 0 ? retrying : sink);
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
