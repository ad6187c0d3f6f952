// The native API's events (meta, delta, usage, done, error), for SSE and for WebSocket frames. Each
// event of the generation's log becomes at most one native event, named by the log's seq, so a
// client that reconnects with `<generationId>:<seq>` continues exactly after what it saw.
import { flat } from '../../contract/flat-string.js';
import { jsonString } from '../../contract/json-string.js';
import { formatSseEvent } from '../../sse/format.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import type { EventEncoder } from './openai-chunks.js';

export interface NativeStreamIdentity {
  generationId: string;
  /** The model name the client asked for. */
  model: string;
  userId: string;
  conversationId?: string;
}

export type NativeEventName = 'meta' | 'delta' | 'upstream' | 'usage' | 'done' | 'error';

export interface NativeEvent {
  name: NativeEventName;
  data: Record<string, unknown>;
}

/** The native event for one log event; undefined for log events that have none. */
export function toNativeEvent(event: StreamEvent, identity: NativeStreamIdentity): NativeEvent | undefined {
  switch (event.type) {
    case 'start':
      return {
        name: 'meta',
        data: { generationId: identity.generationId, model: identity.model, userId: identity.userId, ...(identity.conversationId !== undefined ? { conversationId: identity.conversationId } : {}) },
      };
    case 'text-delta':
      return { name: 'delta', data: { text: event.text } };
    case 'tool-call-delta': {
      const toolCall: Record<string, unknown> = { index: event.index };
      if (event.id !== undefined) toolCall['id'] = event.id;
      if (event.name !== undefined) toolCall['name'] = event.name;
      if (event.argumentsDelta !== undefined) toolCall['argumentsDelta'] = event.argumentsDelta;
      return { name: 'delta', data: { toolCall } };
    }
    case 'upstream-event':
      return { name: 'upstream', data: { ...(event.event !== undefined ? { event: event.event } : {}), data: event.data } };
    case 'usage':
      return { name: 'usage', data: { ...event.usage } };
    case 'end':
      return { name: 'done', data: { finishReason: event.finishReason } };
    case 'error':
      return { name: 'error', data: { code: event.error.code, message: event.error.message, retryable: event.error.retryable } };
  }
}

/** `<generationId>:<seq>`: short ASCII, safe in Last-Event-ID (docs/sse-wire-format.md, "Ids"). */
export function nativeEventId(generationId: string, seq: number): string {
  return `${generationId}:${seq.toString()}`;
}

const lastEventIdPattern = /^([A-Za-z0-9_-]{1,64}):(\d{1,9})$/;

/** Parses a `Last-Event-ID` of the native API; undefined when it is not one. */
export function parseNativeEventId(value: string): { generationId: string; seq: number } | undefined {
  const match = lastEventIdPattern.exec(value);
  if (!match) return undefined;
  return { generationId: match[1] ?? '', seq: Number(match[2]) };
}

/**
 * How soon EventSource reconnects after a drop, sent with `meta`. Browsers default to about 3 s;
 * a resume is cheap (the log is in memory), so a second of silence is enough.
 */
export const nativeRetryMs = 1000;

/** SSE for the native routes: `event:` the native name, `id:` `<generationId>:<seq>`, JSON data. */
export function createNativeSseEncoder(identity: NativeStreamIdentity): EventEncoder {
  // A text delta, the commonest event by far, is written from a head built once: the same text
  // formatSseEvent would make (JSON text is one line), without the objects and checks per event
  // (docs/decisions/0026-stream-path-bytes.md). An id that formatSseEvent would refuse takes its way.
  const deltaHead = /[\r\n\0]/.test(identity.generationId) ? undefined : flat(`event: delta\nid: ${identity.generationId}:`);
  return (event, seq) => {
    if (event.type === 'text-delta' && deltaHead !== undefined) return `${deltaHead}${seq.toString()}\ndata: {"text":${jsonString(event.text)}}\n\n`;
    const native = toNativeEvent(event, identity);
    if (!native) return '';
    return formatSseEvent({ event: native.name, id: nativeEventId(identity.generationId, seq), data: JSON.stringify(native.data), ...(native.name === 'meta' ? { retry: nativeRetryMs } : {}) });
  };
}
