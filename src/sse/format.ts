// SSE framing: how one event is written so that every common client parses it (the rules are in
// docs/sse-wire-format.md). A leaf module with no imports, shared by the encoders, the HTTP layer
// and anything else that writes `text/event-stream`.

export interface SseMessage {
  data: string;
  event?: string;
  id?: string;
  /** Reconnection delay in ms; sent inside an event, never on its own (openai-python breaks on that). */
  retry?: number;
}

/**
 * The heartbeat: a comment line with no blank line after it. `: ping\n\n` would make
 * @microsoft/fetch-event-source call onmessage with empty data, breaking its users' JSON.parse.
 */
export const heartbeat = ': ping\n';

const lineBreak = /\r\n|\r|\n/;

/** Formats one event. Multi-line data becomes several `data:` lines; CR/LF in `event` or `id` is refused. */
export function formatSseEvent(message: SseMessage): string {
  let text = '';
  if (message.event !== undefined) {
    assertSingleLine('event', message.event);
    text += `event: ${message.event}\n`;
  }
  if (message.id !== undefined) {
    assertSingleLine('id', message.id);
    if (message.id.includes('\0')) throw new TypeError('SSE id must not contain NUL (clients ignore such ids)');
    text += `id: ${message.id}\n`;
  }
  if (message.retry !== undefined) {
    // A safe integer, so that toString() gives plain digits (1e21 would print as "1e+21", which
    // clients must ignore: `retry` is only honoured when it is all ASCII digits).
    if (!Number.isSafeInteger(message.retry) || message.retry < 0) throw new TypeError('SSE retry must be a non-negative integer');
    text += `retry: ${message.retry.toString()}\n`;
  }
  const data = message.data;
  if (data.includes('\n') || data.includes('\r')) {
    for (const line of data.split(lineBreak)) text += `data: ${line}\n`;
  } else {
    text += `data: ${data}\n`;
  }
  return `${text}\n`;
}

function assertSingleLine(field: string, value: string): void {
  if (value.includes('\n') || value.includes('\r')) throw new TypeError(`SSE ${field} must not contain CR or LF`);
}

export const sseHeaders: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};
