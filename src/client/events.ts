// The events a client sees, as types, and the checks that turn the gateway's event data (JSON of
// the native API, docs/native-api.md) into them. The checks are lenient where the protocol may
// grow (unknown fields are ignored, unknown event names skipped) and strict where this library
// depends on a field.
import { isRecord, SluiceClientError } from './errors.js';

/** One event of a chat, in the order the gateway sent it. `id` is `<generationId>:<seq>`. */
export type ChatEvent =
  | { type: 'meta'; id: string; generationId: string; model: string; userId: string; conversationId?: string }
  | { type: 'delta'; id: string; text?: string; toolCall?: ToolCallDelta }
  /** A provider's own event relayed as it came (signed-http agents), `userId` added to objects; its text also arrives as deltas. */
  | { type: 'upstream'; id: string; event?: string; data: unknown }
  | { type: 'usage'; id: string; promptTokens: number; completionTokens: number; totalTokens: number; estimated: boolean }
  | { type: 'done'; id: string; finishReason: string }
  /** The last event when the answer failed or was cancelled; `id` is absent only for a cancel before the gateway answered. */
  | { type: 'error'; id?: string; code: string; message: string; retryable: boolean };

/** A piece of a tool call; pieces with the same `index` belong to one call. */
export interface ToolCallDelta {
  index: number;
  id?: string;
  name?: string;
  argumentsDelta?: string;
}

/** One hub push (GET /api/events or a WebSocket `push` frame). `id` is the hub's sequence number. */
export interface PushEvent {
  id: string;
  /** The push's name, e.g. `notice`. */
  event: string;
  /** The push's data, parsed from JSON. */
  data: unknown;
}

/** A conversation as listed by GET /api/conversations (times are ISO 8601). */
export interface ConversationSummary {
  id: string;
  title: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A conversation with its stored messages (GET /api/conversations/:id). */
export interface Conversation extends ConversationSummary {
  messages: ConversationMessage[];
}

export interface ConversationMessage {
  seq: number;
  role: string;
  content: string;
  status: 'complete' | 'cancelled' | 'error';
  createdAt: string;
  generationId: string | null;
}

const nativeEventIdPattern = /^([A-Za-z0-9_-]{1,64}):(\d{1,9})$/;

/** Splits `<generationId>:<seq>`; undefined when the text is not a native event id. */
export function parseChatEventId(value: string): { generationId: string; seq: number } | undefined {
  const match = nativeEventIdPattern.exec(value);
  if (!match) return undefined;
  return { generationId: match[1] ?? '', seq: Number(match[2]) };
}

/**
 * The ChatEvent for one native SSE event (or WebSocket frame data); undefined for an event name
 * this version does not know, so that a newer gateway does not break an older client. Throws
 * SluiceClientError `protocol_error` when a known event's data is not what the contract says.
 */
export function toChatEvent(name: string, id: string, dataText: string): ChatEvent | undefined {
  if (name !== 'meta' && name !== 'delta' && name !== 'upstream' && name !== 'usage' && name !== 'done' && name !== 'error') return undefined;
  const data = parseJson(dataText, `the ${name} event ${id}`);
  if (!isRecord(data)) throw protocolError(`the ${name} event ${id} does not carry a JSON object`);
  switch (name) {
    case 'meta': {
      const { generationId, model, userId, conversationId } = data;
      if (typeof generationId !== 'string' || typeof model !== 'string' || typeof userId !== 'string') throw protocolError(`the meta event ${id} lacks generationId, model or userId`);
      return { type: 'meta', id, generationId, model, userId, ...(typeof conversationId === 'string' ? { conversationId } : {}) };
    }
    case 'delta': {
      const event: ChatEvent = { type: 'delta', id };
      if (typeof data['text'] === 'string') event.text = data['text'];
      const toolCall = data['toolCall'];
      if (isRecord(toolCall) && typeof toolCall['index'] === 'number') {
        const call: ToolCallDelta = { index: toolCall['index'] };
        if (typeof toolCall['id'] === 'string') call.id = toolCall['id'];
        if (typeof toolCall['name'] === 'string') call.name = toolCall['name'];
        if (typeof toolCall['argumentsDelta'] === 'string') call.argumentsDelta = toolCall['argumentsDelta'];
        event.toolCall = call;
      }
      return event;
    }
    case 'upstream':
      return { type: 'upstream', id, ...(typeof data['event'] === 'string' ? { event: data['event'] } : {}), data: data['data'] };
    case 'usage': {
      const { promptTokens, completionTokens, totalTokens, estimated } = data;
      if (typeof promptTokens !== 'number' || typeof completionTokens !== 'number' || typeof totalTokens !== 'number') throw protocolError(`the usage event ${id} lacks its token counts`);
      return { type: 'usage', id, promptTokens, completionTokens, totalTokens, estimated: estimated === true };
    }
    case 'done':
      return { type: 'done', id, finishReason: typeof data['finishReason'] === 'string' ? data['finishReason'] : 'stop' };
    case 'error':
      return {
        type: 'error',
        id,
        code: typeof data['code'] === 'string' ? data['code'] : 'internal_error',
        message: typeof data['message'] === 'string' ? data['message'] : 'The gateway reported an error without a message.',
        retryable: data['retryable'] === true,
      };
  }
}

/** Parses JSON the gateway sent; throws `protocol_error` naming `what` when it is not JSON. */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw protocolError(`${what} is not JSON (${error instanceof Error ? error.message : String(error)})`, error);
  }
}

export function protocolError(problem: string, cause?: unknown): SluiceClientError {
  return new SluiceClientError('protocol_error', `The gateway sent something this client cannot read: ${problem}.`, cause !== undefined ? { cause } : {});
}
