// POST /v1/chat/completions: the OpenAI-compatible route, streamed or not.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../../config/config.js';
import type { GenerationService } from '../../relay/generation-service.js';
import type { Metrics } from '../../observability/metrics.js';
import { createOpenAiChunkEncoder } from '../../relay/encoders/openai-chunks.js';
import { aggregateCompletion } from '../../relay/encoders/openai-completion.js';
import type { ChatMessage } from '../../contract/provider.js';
import { readJsonBody } from '../request-body.js';
import { sendError } from '../respond.js';
import { respondWhenDone } from '../respond-when-done.js';
import { callerOf, recordGeneration, traceOf, type RequestContext } from '../request-context.js';
import { actFor } from '../../auth/authenticate.js';
import { upstreamUserId } from '../../contract/principal.js';
import { SseStream } from '../sse/sse-writer.js';
import { relayGeneration } from '../sse/relay-generation.js';
import { parseChatCompletionRequest } from './chat-completions-schema.js';

interface Dependencies {
  config: Config;
  generations: GenerationService;
  metrics: Metrics;
  now: () => number;
}

/** Fields that belong to the route, not to the provider's sampling parameters. */
const routeFields = new Set(['model', 'messages', 'stream', 'stream_options']);

export function createChatCompletionsRoute(dependencies: Dependencies) {
  const { config, generations, metrics } = dependencies;

  return async function chatCompletions(context: RequestContext, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = parseChatCompletionRequest(await readJsonBody(request, config.server.bodyLimitBytes));
    const stream = body.stream === true;
    context.model = body.model;
    context.stream = stream;
    const params: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(body)) if (!routeFields.has(key) && value !== undefined) params[key] = value;
    // OpenAI's `user` field names the end user: a service credential may act for them, a user
    // credential only for itself.
    const principal = typeof body.user === 'string' ? actFor(callerOf(context), body.user, 'user') : callerOf(context);
    context.principal = principal;
    const userId = upstreamUserId(principal);

    const generation = await generations.start({
      model: body.model,
      request: { messages: body.messages as ChatMessage[], params, ...(userId !== undefined ? { userId } : {}) },
      mode: stream ? 'stream' : 'complete',
      requestId: context.requestId,
      ...traceOf(context),
      principal,
      route: 'chat-completions',
    });
    const identity = { id: `chatcmpl-${generation.id}`, created: Math.floor(dependencies.now() / 1000), model: body.model };
    recordGeneration(context, generation);

    if (!stream) {
      await respondWhenDone(generation, response, (events) => aggregateCompletion(events, identity));
      return;
    }

    const sse = new SseStream(response, { heartbeatMs: config.server.heartbeatMs, headers: { 'x-request-id': context.requestId } });
    relayGeneration({
      generation,
      sse,
      encode: createOpenAiChunkEncoder({ ...identity, includeUsage: body.stream_options?.include_usage === true }),
      maxBufferedBytes: config.server.maxBufferedBytes,
      onErrorBeforeOpen: (error) => sendError(response, error),
      streams: metrics.activeStreams,
    });
  };
}
