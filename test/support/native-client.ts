// The client side of the native API tests: posts chats to /api/chat and reads the SSE answer with
// eventsource-parser into typed native events, optionally stopping after a number of deltas to
// simulate a dropped connection.
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface NativeEvent {
  event: string;
  id: string | undefined;
  data: Record<string, unknown>;
}

export interface NativeRead {
  status: number;
  headers: Headers;
  events: NativeEvent[];
  /** The text of every `delta` event, joined. */
  text: string;
  /** The id of the last event read (what a reconnect sends as Last-Event-ID). */
  lastEventId: string | undefined;
}

export interface ReadOptions {
  /** Drop the connection after this many delta events (a lost network, a closed tab). */
  stopAfterDeltas?: number;
}

/** Reads a native SSE response to its end (or to `stopAfterDeltas`, then aborts it). */
export async function readNative(response: Response, controller?: AbortController, options: ReadOptions = {}): Promise<NativeRead> {
  const read: NativeRead = { status: response.status, headers: response.headers, events: [], text: '', lastEventId: undefined };
  if (response.status !== 200 || !response.body) {
    await response.body?.cancel();
    return read;
  }
  let deltas = 0;
  let stop = false;
  const parser = createParser({
    onEvent(message: EventSourceMessage) {
      if (stop) return;
      const event: NativeEvent = { event: message.event ?? 'message', id: message.id, data: JSON.parse(message.data) as Record<string, unknown> };
      read.events.push(event);
      if (message.id !== undefined) read.lastEventId = message.id;
      if (event.event === 'delta' && typeof event.data['text'] === 'string') {
        read.text += event.data['text'];
        deltas++;
        if (options.stopAfterDeltas !== undefined && deltas >= options.stopAfterDeltas) stop = true;
      }
    },
  });
  const decoder = new TextDecoder();
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
      if (stop) break;
    }
  } finally {
    if (stop) {
      controller?.abort();
      await reader.cancel().catch(() => undefined);
    }
  }
  return read;
}

export function nativeHeaders(key: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return { 'content-type': 'application/json', accept: 'text/event-stream', ...(key !== undefined ? { authorization: `Bearer ${key}` } : {}), ...extra };
}

/** POST /api/chat as a streaming client. */
export async function postNativeChat(baseUrl: string, body: Record<string, unknown>, options: { key?: string; headers?: Record<string, string>; stopAfterDeltas?: number } = {}): Promise<NativeRead> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 15_000);
  try {
    const response = await fetch(`${baseUrl}/api/chat`, { method: 'POST', headers: nativeHeaders(options.key, options.headers), body: JSON.stringify(body), signal: controller.signal });
    return await readNative(response, controller, options.stopAfterDeltas !== undefined ? { stopAfterDeltas: options.stopAfterDeltas } : {});
  } finally {
    clearTimeout(timer);
  }
}

/** GET /api/generations/:id/events, resuming after `lastEventId` when given. */
export async function attachNative(baseUrl: string, generationId: string, options: { key?: string; lastEventId?: string; stopAfterDeltas?: number } = {}): Promise<NativeRead> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 15_000);
  try {
    const headers = nativeHeaders(options.key, options.lastEventId !== undefined ? { 'last-event-id': options.lastEventId } : {});
    const response = await fetch(`${baseUrl}/api/generations/${generationId}/events`, { headers, signal: controller.signal });
    return await readNative(response, controller, options.stopAfterDeltas !== undefined ? { stopAfterDeltas: options.stopAfterDeltas } : {});
  } finally {
    clearTimeout(timer);
  }
}

export function generationIdOf(read: NativeRead): string {
  const meta = read.events.find((event) => event.event === 'meta');
  const id = meta?.data['generationId'];
  if (typeof id !== 'string') throw new Error(`no meta event with a generationId in ${JSON.stringify(read.events.slice(0, 3))}`);
  return id;
}
