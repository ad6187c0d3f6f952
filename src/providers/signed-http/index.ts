// The `signed-http` provider: a company's or vendor's own streaming endpoint, signed with one of
// the configured schemes, its events relayed as they come.
import type { CallContext, ChatRequest, ProviderAdapter, PushedEvents } from '../../contract/provider.js';
import type { AdapterDependencies } from '../definition.js';
import { providerPool } from '../shared/http-client.js';
import { streamHttpUpstream } from '../shared/http-upstream.js';
import { cancellationOf } from '../shared/cancellation.js';
import type { ResolvedSignedHttpProvider } from './config.js';
import { buildRequest, secretsOf } from './request.js';
import { signedEventsDecoder } from './stream.js';
import { statusError } from './errors.js';

export function createSignedHttpAdapter(config: ResolvedSignedHttpProvider, dependencies: AdapterDependencies): ProviderAdapter {
  const { dispatcher, close } = providerPool(config, dependencies.outboundProxy, dependencies.dispatcher);
  const provider = config.id;
  const secrets = secretsOf(config);
  const passHeaders = (config.passHeaders ?? []).map((name) => name.toLowerCase());

  function stream(request: ChatRequest, context: CallContext): PushedEvents {
    const user = typeof request.params['user'] === 'string' ? request.params['user'] : request.userId;
    return streamHttpUpstream({
      provider,
      dispatcher,
      cancellation: cancellationOf(context),
      traceparent: context.traceparent,
      request: buildRequest(config, request, dependencies.now()),
      upstreamModel: request.model,
      passHeaders,
      mapErrorResponse: (response) => statusError(response.status, response.text, provider, secrets),
      decode: () => signedEventsDecoder(config, user),
    });
  }

  return {
    id: provider,
    type: 'signed-http',
    models: config.models ?? ['default'],
    stream,
    close,
  };
}
