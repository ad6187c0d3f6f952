// The `signed-http` provider: a company's or vendor's own streaming endpoint, signed with one of
// the configured schemes, its events relayed as they come.
import type { ResolvedSignedHttpProvider } from './config.js';
import type { CallContext, ChatRequest, ProviderAdapter } from '../../contract/provider.js';
import type { AdapterDependencies } from '../definition.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { providerPool, readBodyText, sendUpstream, transportError } from '../shared/http-client.js';
import { readSseEvents } from '../shared/sse-reader.js';
import { buildRequest, secretsOf } from './request.js';
import { decodeEvents } from './stream.js';
import { statusError } from './errors.js';

export function createSignedHttpAdapter(config: ResolvedSignedHttpProvider, dependencies: AdapterDependencies): ProviderAdapter {
  const { dispatcher: pool, close } = providerPool(config, dependencies.outboundProxy, dependencies.dispatcher);
  const provider = config.id;
  const secrets = secretsOf(config);
  const passHeaders = (config.passHeaders ?? []).map((name) => name.toLowerCase());

  async function* stream(request: ChatRequest, context: CallContext): AsyncGenerator<readonly StreamEvent[]> {
    const built = buildRequest(config, request, dependencies.now());
    const response = await sendUpstream({ ...built, signal: context.signal, dispatcher: pool, provider });
    try {
      if (response.statusCode !== 200) throw statusError(response.statusCode, await readBodyText(response.body), provider, secrets);
      const responseHeaders: Record<string, string> = {};
      for (const name of passHeaders) {
        const value = response.headers[name];
        if (typeof value === 'string') responseHeaders[name] = value;
      }
      yield [{ type: 'start', upstreamModel: request.model, responseHeaders }];
      const user = typeof request.params['user'] === 'string' ? request.params['user'] : request.userId;
      yield* decodeEvents(readSseEvents(response.body, { maxEventBytes: config.maxEventBytes, provider }), config, user);
    } catch (error) {
      throw transportError(error, context.signal, provider);
    } finally {
      if (!response.body.destroyed) response.body.destroy();
    }
  }

  return {
    id: provider,
    type: 'signed-http',
    models: config.models ?? ['default'],
    stream,
    close,
  };
}
