// The native streaming API: POST /api/chat (SSE with Accept: text/event-stream, else one JSON
// object), GET /api/chat for EventSource, GET /api/generations/:id/events to attach or resume,
// and POST /api/generations/:id/cancel. Generations started here are resumable: a request that
// carries `Last-Event-ID` (`<generationId>:<seq>`) continues that generation and never starts a
// second one, and one at or past the end of a finished generation gets 204 so EventSource stops.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Config } from '../../config/config.js';
import { SluiceError } from '../../errors/sluice-error.js';
import type { Principal } from '../../contract/principal.js';
import { upstreamUserId } from '../../contract/principal.js';
import type { GenerationService } from '../../relay/generation-service.js';
import type { Generation, GenerationView } from '../../relay/generation.js';
import type { GenerationRegistry } from '../../relay/generation-registry.js';
import type { Metrics } from '../../observability/metrics.js';
import type { ChatMessage } from '../../contract/provider.js';
import type { ConversationStore } from '../../store/store.js';
import { collectAnswer } from '../../relay/collect-answer.js';
import { createNativeSseEncoder, parseNativeEventId, type NativeStreamIdentity } from '../../relay/encoders/native-events.js';
import { readJsonBody } from '../request-body.js';
import { sendError } from '../respond.js';
import { respondWhenDone } from '../respond-when-done.js';
import { callerOf, recordGeneration, traceOf, type RequestContext } from '../request-context.js';
import type { GenerationTrace } from '../../contract/generation-trace.js';
import type { RouteSpec } from '../router.js';
import { SseStream } from '../sse/sse-writer.js';
import { relayGeneration } from '../sse/relay-generation.js';
import { parseBody, parseWith } from '../validate.js';
import { chatMessageSchema } from './chat-completions-schema.js';
import { loadHistory, storeTurns } from './conversation-history.js';

export interface NativeChatDependencies {
  config: Config;
  generations: GenerationService;
  registry: GenerationRegistry;
  conversations: ConversationStore;
  metrics: Metrics;
  /** Milliseconds since the epoch, for stored turns. */
  now: () => number;
  /** A conversation turn could not be stored (logged; the answer itself is not affected). */
  onStoreError: (error: unknown) => void;
  /** Remembers that a ticket started a generation, so EventSource may resume it with that ticket. */
  bindTicket: (ticket: string, principal: Principal, generationId: string) => void;
}

export const conversationIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -');

const maxMessageChars = 200_000;

export const nativeChatBodySchema = z
  .strictObject({
    /** One new user message. */
    message: z.string().min(1, 'must not be empty').max(maxMessageChars).optional(),
    /** A whole conversation in OpenAI's format, instead of `message` (not with conversationId). */
    messages: z.array(chatMessageSchema).min(1, 'must contain at least one message').optional(),
    model: z.string().min(1).max(256).optional(),
    conversationId: conversationIdSchema.optional(),
    /** A system prompt, sent first and not stored. */
    system: z.string().max(maxMessageChars).optional(),
    /** Sampling fields in OpenAI's names (temperature, max_tokens, …), passed to the provider. */
    params: z.record(z.string(), z.unknown()).optional(),
  })
  .check((context) => {
    const body = context.value;
    if ((body.message === undefined) === (body.messages === undefined)) {
      context.issues.push({ code: 'custom', path: ['message'], message: 'send exactly one of message and messages', input: body });
    } else if (body.messages !== undefined && body.conversationId !== undefined) {
      context.issues.push({ code: 'custom', path: ['messages'], message: 'with a conversationId send message (the stored history is added to it), not messages', input: body });
    }
  });

export type NativeChatBody = z.infer<typeof nativeChatBodySchema>;

const chatQuerySchema = z.strictObject({
  message: z.string().min(1, 'must not be empty').max(maxMessageChars),
  model: z.string().min(1).max(256).optional(),
  conversationId: conversationIdSchema.optional(),
  system: z.string().max(maxMessageChars).optional(),
  ticket: z.string().optional(),
  lastEventId: z.string().optional(),
});

export function createNativeChatRoutes(dependencies: NativeChatDependencies): RouteSpec[] {
  const { config, registry } = dependencies;
  const chats = createNativeChats(dependencies);
  const { attach, startChat } = createChatResponses(dependencies, chats);

  return [
    {
      method: 'POST',
      pattern: '/api/chat',
      async handler(context, request, response) {
        const resume = lastEventIdOf(context, request);
        if (resume) {
          // fetch-event-source re-sends the same POST with last-event-id: resume, never run (and bill) the model twice.
          request.resume();
          await attach(context, response, resume.generationId, resume.seq);
          return;
        }
        const body = parseBody(nativeChatBodySchema, await readJsonBody(request, config.server.bodyLimitBytes));
        await startChat(context, response, body, acceptsEventStream(request));
      },
    },
    {
      method: 'GET',
      pattern: '/api/chat',
      async handler(context, request, response) {
        const resume = lastEventIdOf(context, request);
        if (resume) {
          await attach(context, response, resume.generationId, resume.seq);
          return;
        }
        const query = parseWith(chatQuerySchema, Object.fromEntries(context.query));
        await startChat(
          context,
          response,
          {
            message: query.message,
            ...(query.model !== undefined ? { model: query.model } : {}),
            ...(query.conversationId !== undefined ? { conversationId: query.conversationId } : {}),
            ...(query.system !== undefined ? { system: query.system } : {}),
          },
          true,
        );
      },
      options: { tickets: true },
    },
    {
      method: 'GET',
      pattern: '/api/generations/:id/events',
      async handler(context, request, response, params) {
        const id = params['id'] ?? '';
        const resume = lastEventIdOf(context, request);
        if (resume && resume.generationId !== id) {
          throw new SluiceError('invalid_request', { param: 'Last-Event-ID', message: `Last-Event-ID names generation ${resume.generationId}, but the path names ${id}.` });
        }
        await attach(context, response, id, resume?.seq);
      },
      options: { tickets: true },
    },
    {
      method: 'POST',
      pattern: '/api/generations/:id/cancel',
      async handler(context, request, response, params) {
        request.resume();
        const id = params['id'] ?? '';
        const { generation } = await chats.findOwned(callerOf(context), id);
        const cancelled = await registry.cancel(id, new SluiceError('cancelled', { message: 'The generation was cancelled by request (POST /api/generations/:id/cancel).' }));
        response.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        response.end(JSON.stringify({ generationId: id, cancelled, finished: generation.finished || cancelled }));
      },
    },
  ];
}

/** How the native routes answer: a stream of a generation (new or resumed), or one JSON object. */
function createChatResponses(dependencies: NativeChatDependencies, chats: NativeChats) {
  const { config, metrics } = dependencies;

  /** Streams a generation's events after `afterSeq` (all of them when undefined), then follows live. */
  async function attach(context: RequestContext, response: ServerResponse, generationId: string, afterSeq: number | undefined): Promise<void> {
    const { generation, identity } = await chats.findOwned(callerOf(context), generationId);
    const fromSeq = afterSeq === undefined ? 0 : afterSeq + 1;
    context.model = identity.model;
    context.stream = true;
    if (generation.finished && fromSeq >= generation.events.length) {
      // Nothing more will ever come: 204 tells EventSource to stop reconnecting.
      response.writeHead(204);
      response.end();
      return;
    }
    stream(context, response, generation, identity, fromSeq);
  }

  function stream(context: RequestContext, response: ServerResponse, generation: GenerationView, identity: NativeStreamIdentity, fromSeq: number): void {
    const sse = new SseStream(response, {
      heartbeatMs: config.server.heartbeatMs,
      headers: { 'x-request-id': context.requestId, 'x-sluice-generation-id': identity.generationId },
    });
    relayGeneration({
      generation,
      sse,
      encode: createNativeSseEncoder(identity),
      fromSeq,
      maxBufferedBytes: config.server.maxBufferedBytes,
      onErrorBeforeOpen: (error) => sendError(response, error),
      streams: metrics.activeStreams,
    });
  }

  async function startChat(context: RequestContext, response: ServerResponse, body: NativeChatBody, wantsStream: boolean): Promise<void> {
    const principal = callerOf(context);
    context.model = body.model ?? config.defaultModel;
    context.stream = wantsStream;
    const { generation, identity } = await chats.begin(principal, body, { stream: wantsStream, requestId: context.requestId, route: 'native', ...traceOf(context) });
    recordGeneration(context, generation);
    if (context.ticket !== undefined) dependencies.bindTicket(context.ticket, principal, generation.id);
    if (wantsStream) {
      stream(context, response, generation, identity, 0);
      return;
    }
    await respondWhenDone(generation, response, (events) => {
      const answer = collectAnswer(events);
      return {
        generationId: generation.id,
        ...(identity.conversationId !== undefined ? { conversationId: identity.conversationId } : {}),
        model: identity.model,
        userId: principal.userId,
        text: answer.text,
        ...(answer.toolCalls.length > 0 ? { toolCalls: answer.toolCalls } : {}),
        finishReason: answer.finishReason ?? null,
        usage: answer.usage ?? null,
      };
    });
  }

  return { attach, startChat };
}

/** The `Last-Event-ID` of a request (header, or `lastEventId` query for clients that cannot set headers). */
function lastEventIdOf(context: RequestContext, request: IncomingMessage): { generationId: string; seq: number } | undefined {
  const header = request.headers['last-event-id'];
  const value = (Array.isArray(header) ? header[0] : header) ?? context.query.get('lastEventId') ?? undefined;
  if (value === undefined || value === '') return undefined;
  const parsed = parseNativeEventId(value);
  if (!parsed) throw new SluiceError('invalid_request', { param: 'Last-Event-ID', message: `Last-Event-ID: "${value.slice(0, 80)}" is not an id of this API; ids look like <generationId>:<seq>.` });
  return parsed;
}

export interface NativeChats {
  /**
   * Starts a resumable (when `stream`) generation for the native API: the conversation's history
   * before the new message, its turns stored when the answer ends. Rejects like
   * GenerationService.start, or with `conversation_not_found`.
   */
  begin(principal: Principal, body: NativeChatBody, options: { stream: boolean; requestId: string; route: 'native' | 'websocket'; trace?: GenerationTrace }): Promise<{ generation: Generation; identity: NativeStreamIdentity }>;
  /** A generation the principal may attach to: `generation_not_found`, or `forbidden` for someone else's. */
  findOwned(principal: Principal, generationId: string): Promise<{ generation: GenerationView; identity: NativeStreamIdentity }>;
}

/** What the native SSE routes and the WebSocket gateway share: starting and finding chats. */
export function createNativeChats(dependencies: Pick<NativeChatDependencies, 'config' | 'generations' | 'registry' | 'conversations' | 'onStoreError' | 'now'>): NativeChats {
  const { config, generations, registry } = dependencies;
  return {
    async begin(principal, body, options) {
      const model = body.model ?? config.defaultModel;
      const history = body.conversationId !== undefined ? await loadHistory(dependencies.conversations, principal, body.conversationId, config.conversations, body.message ?? '', dependencies.now) : [];
      const newMessages: ChatMessage[] = body.messages !== undefined ? (body.messages as ChatMessage[]) : [{ role: 'user', content: body.message ?? '' }];
      const messages: ChatMessage[] = [...(body.system !== undefined ? [{ role: 'system' as const, content: body.system }] : []), ...history, ...newMessages];
      const userId = upstreamUserId(principal);
      const generation = await generations.start({
        model,
        request: { messages, params: body.params ?? {}, ...(userId !== undefined ? { userId } : {}) },
        mode: options.stream ? 'stream' : 'complete',
        requestId: options.requestId,
        ...(options.trace !== undefined ? { trace: options.trace } : {}),
        principal,
        route: options.route,
        // One JSON answer cannot be resumed: a client that leaves it cancels it.
        resumable: options.stream,
        ...(body.conversationId !== undefined ? { conversationId: body.conversationId } : {}),
      });
      if (body.conversationId !== undefined && body.message !== undefined) {
        storeTurns(dependencies.conversations, generation, body.conversationId, body.message, dependencies.now, dependencies.onStoreError);
      }
      const identity: NativeStreamIdentity = { generationId: generation.id, model, userId: principal.userId };
      if (body.conversationId !== undefined) identity.conversationId = body.conversationId;
      return { generation, identity };
    },

    async findOwned(principal, generationId) {
      const found = await registry.find(generationId);
      if (!found) {
        throw new SluiceError('generation_not_found', {
          message: `No generation ${generationId}: it never existed here, or it finished more than ${config.generations.retentionMs.toString()} ms ago (generations.retentionMs).`,
        });
      }
      if (found.info.ownerId !== principal.userId && principal.role !== 'admin') {
        throw new SluiceError('forbidden', { message: `Generation ${generationId} belongs to another user; only its owner or an admin may attach to it.` });
      }
      const identity: NativeStreamIdentity = { generationId, model: found.info.model, userId: found.info.ownerId };
      if (found.info.conversationId !== undefined) identity.conversationId = found.info.conversationId;
      return { generation: found.generation, identity };
    },
  };
}

function acceptsEventStream(request: IncomingMessage): boolean {
  return (request.headers.accept ?? '').toLowerCase().includes('text/event-stream');
}
