// The Anthropic Messages API on Sluice's generation core: POST /v1/messages (streamed or one JSON
// message) and POST /v1/messages/count_tokens, to any provider. Same admission, limits, usage
// rows, cancellation and SSE writer as /v1/chat/completions; what is its own is the body (mapped
// onto the chat request in messages-input.ts), the encoder (relay/encoders/messages-events.ts),
// `ping` events as heartbeats, the `x-api-key` header as a credential, and errors in Anthropic's
// shape, before the first byte and after it (docs/messages.md).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../../config/config.js';
import { upstreamUserId } from '../../contract/principal.js';
import type { Principal } from '../../contract/principal.js';
import { estimatePromptTokens, estimateTokens } from '../../contract/usage-estimate.js';
import { modelRefusal } from '../../auth/model-allowlist.js';
import type { Metrics } from '../../observability/metrics.js';
import type { GenerationService } from '../../relay/generation-service.js';
import { createMessagesSseEncoder, messageFromLog, messagesPing, type MessageIdentity } from '../../relay/encoders/messages-events.js';
import type { ModelRouter } from '../../routing/model-router.js';
import { readJsonBody } from '../request-body.js';
import { callerOf, recordGeneration, traceOf, type RequestContext } from '../request-context.js';
import { sendAnthropicError, sendJson } from '../respond.js';
import { respondWhenDone } from '../respond-when-done.js';
import type { RouteSpec } from '../router.js';
import { SseStream } from '../sse/sse-writer.js';
import { relayGeneration } from '../sse/relay-generation.js';
import { toChatMessages, toChatParams, toChatTool } from './messages-input.js';
import { parseCountTokensBody, parseCreateMessageBody, type CountTokensBody } from './messages-schema.js';

export interface MessagesDependencies {
  config: Config;
  generations: GenerationService;
  modelRouter: ModelRouter;
  metrics: Metrics;
}

/** The header count_tokens answers with: its count is Sluice's estimate, not the provider's tokenizer. */
export const tokenCountHeader = 'sluice-token-count';

/** Options every Messages route shares: Anthropic's credential header and error bodies. */
const messagesRouteOptions = { apiKeyHeader: 'x-api-key', sendError: sendAnthropicError } as const;

export function createMessagesRoutes(dependencies: MessagesDependencies): RouteSpec[] {
  const { config, generations, metrics } = dependencies;

  /**
   * Checks that `model` exists for this caller, through the model router: the one place this
   * route asks it (throws `model_not_allowed` or `model_not_found`). Generations resolve their
   * model in the generation service; only count_tokens, which starts none, needs this.
   */
  function checkModel(principal: Principal, model: string): void {
    const refusal = modelRefusal(principal, model);
    if (refusal) throw refusal;
    dependencies.modelRouter.resolve(model);
  }

  async function create(context: RequestContext, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = parseCreateMessageBody(await readJsonBody(request, config.server.bodyLimitBytes));
    const stream = body.stream === true;
    context.model = body.model;
    context.stream = stream;
    // `metadata.user_id` is Anthropic's opaque tag (Claude Code sends a hash there), not a user to
    // act for: a service key names its end user with X-Sluice-User, as on every route.
    const principal = callerOf(context);
    const userId = upstreamUserId(principal);
    const messages = toChatMessages(body);
    const generation = await generations.start({
      model: body.model,
      request: { messages, params: toChatParams(body), ...(userId !== undefined ? { userId } : {}) },
      mode: stream ? 'stream' : 'complete',
      requestId: context.requestId,
      ...traceOf(context),
      principal,
      route: 'messages',
    });
    const identity: MessageIdentity = { id: `msg_${generation.id}`, model: body.model, estimatedInputTokens: estimateInput(body, messages) };
    recordGeneration(context, generation);

    if (!stream) {
      await respondWhenDone(generation, response, (events) => messageFromLog(identity, events), sendAnthropicError);
      return;
    }
    const sse = new SseStream(response, { heartbeatMs: config.server.heartbeatMs, heartbeat: messagesPing, headers: { 'x-request-id': context.requestId } });
    relayGeneration({
      generation,
      sse,
      encode: createMessagesSseEncoder(identity),
      maxBufferedBytes: config.server.maxBufferedBytes,
      onErrorBeforeOpen: (error) => sendAnthropicError(response, error),
      streams: metrics.activeStreams,
    });
  }

  async function countTokens(context: RequestContext, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = parseCountTokensBody(await readJsonBody(request, config.server.bodyLimitBytes));
    context.model = body.model;
    checkModel(callerOf(context), body.model);
    // `estimated` and the header say what this is: no provider's tokenizer is asked (most have no
    // counting endpoint), so the figure is the estimate usage rows use when a provider gives none.
    sendJson(response, 200, { input_tokens: estimateInput(body, toChatMessages(body)), estimated: true }, { [tokenCountHeader]: 'estimated' });
  }

  return [
    { method: 'POST', pattern: '/v1/messages', handler: create, options: messagesRouteOptions },
    { method: 'POST', pattern: '/v1/messages/count_tokens', handler: countTokens, options: messagesRouteOptions },
  ];
}

/** The prompt's estimated tokens: its messages, and its tools' definitions, which the model reads too. */
function estimateInput(body: Pick<CountTokensBody, 'tools'>, messages: Parameters<typeof estimatePromptTokens>[0]): number {
  const tools = body.tools ?? [];
  return estimatePromptTokens(messages) + (tools.length > 0 ? estimateTokens(JSON.stringify(tools.map(toChatTool))) : 0);
}
