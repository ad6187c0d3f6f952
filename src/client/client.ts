// createSluiceClient: the native API of a Sluice gateway for browsers and Node ≥ 20.18, on web
// platform APIs only (fetch, ReadableStream, TextDecoder, AbortController, WebSocket). Chats
// resume by themselves after a dropped connection; hub subscriptions reconnect and replay.
import { resolveRetry, type RetryOptions } from './backoff.js';
import { createChatStream, type ChatInput, type ChatStream, type ResumeInput } from './chat.js';
import { isRecord, SluiceClientError } from './errors.js';
import type { Conversation, ConversationSummary } from './events.js';
import { issueTicket, requestJson, type ClientContext } from './http.js';
import { createSubscription, type SubscribeInput, type Subscription } from './subscribe.js';
import type { WebSocketConstructor } from './websocket.js';

export interface SluiceClientOptions {
  /**
   * The gateway, e.g. `http://127.0.0.1:8080`; `''` means the page's own origin (browsers only).
   * A trailing slash is ignored.
   */
  baseUrl: string;
  /** An API key or JWT, sent as `Authorization: Bearer …`; never put in a URL (tickets are fetched instead). */
  apiKey?: string;
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** For `subscribe({ transport: 'ws' })`. Default `globalThis.WebSocket`; Node 20 needs one, e.g. from `ws`. */
  WebSocket?: WebSocketConstructor;
  /** Reconnection of dropped streams: maxAttempts 5, baseDelayMs 250, maxDelayMs 5000. */
  retry?: RetryOptions;
}

export interface SluiceClient {
  /** Starts a chat (POST /api/chat, SSE). Nothing is sent until the stream is iterated. */
  chat(input: ChatInput): ChatStream;
  /** Continues a generation after `lastEventId` (GET /api/generations/:id/events), e.g. after a page reload. */
  resume(input: ResumeInput): ChatStream;
  /** The caller's hub pushes (GET /api/events, or GET /api/ws with `transport: 'ws'`). */
  subscribe(input?: SubscribeInput): Subscription;
  /** GET /v1/models: the models this gateway routes. */
  models(): Promise<{ id: string; owned_by: string }[]>;
  /** The caller's stored conversations; someone else's is a 404 `conversation_not_found`. */
  conversations: {
    /** Newest first. */
    list(): Promise<ConversationSummary[]>;
    get(id: string): Promise<Conversation>;
    delete(id: string): Promise<void>;
  };
  /** POST /api/tickets: a single-use credential for a URL (EventSource, WebSocket), valid 60 s by default. */
  ticket(): Promise<string>;
}

/**
 * Creates a client. Throws TypeError for a bad option (a negative retry value, no fetch in this
 * runtime); every other failure surfaces from the call that meets it, as SluiceClientError.
 */
export function createSluiceClient(options: SluiceClientOptions): SluiceClient {
  const fetchFunction = options.fetch ?? globalThis.fetch;
  if (typeof fetchFunction !== 'function') throw new TypeError('createSluiceClient: this runtime has no global fetch; pass one as the `fetch` option.');
  const context: ClientContext = Object.freeze({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    apiKey: options.apiKey,
    // Called unbound, a browser's fetch throws "Illegal invocation".
    fetch: options.fetch ?? ((input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => globalThis.fetch(input, init)),
    WebSocket: options.WebSocket,
    retry: resolveRetry(options.retry),
  });

  return {
    chat(input) {
      const { signal, ...fields } = input;
      const body: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(fields)) if (value !== undefined) body[name] = value;
      return createChatStream(context, { kind: 'chat', body }, signal);
    },
    resume(input) {
      return createChatStream(context, { kind: 'resume', lastEventId: input.lastEventId }, input.signal);
    },
    subscribe(input = {}) {
      return createSubscription(context, input);
    },
    async models() {
      return listOf(await requestJson(context, 'GET', '/v1/models'), 'GET /v1/models') as { id: string; owned_by: string }[];
    },
    conversations: {
      async list() {
        return listOf(await requestJson(context, 'GET', '/api/conversations'), 'GET /api/conversations') as ConversationSummary[];
      },
      async get(id) {
        const body = await requestJson(context, 'GET', `/api/conversations/${encodeURIComponent(id)}`);
        if (!isRecord(body) || !Array.isArray(body['messages'])) throw new SluiceClientError('protocol_error', `GET /api/conversations/${id}: the answer is not a conversation.`);
        return body as unknown as Conversation;
      },
      async delete(id) {
        await requestJson(context, 'DELETE', `/api/conversations/${encodeURIComponent(id)}`);
      },
    },
    ticket() {
      return issueTicket(context);
    },
  };
}

/** The `data` array of an OpenAI-style list answer. */
function listOf(body: unknown, what: string): unknown[] {
  if (!isRecord(body) || !Array.isArray(body['data'])) throw new SluiceClientError('protocol_error', `${what}: the answer is not a list.`);
  return body['data'];
}
