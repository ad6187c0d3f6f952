// Reads a fetch Response body as Server-Sent Events with eventsource-parser, over a streaming
// TextDecoder (so a character split across chunks is decoded whole). Uses getReader() rather
// than async iteration of the body, which not every browser supports.
import { createParser, type EventSourceMessage } from 'eventsource-parser';

/**
 * Yields each complete event of `body` in order, and returns when the body ends. An event cut
 * off by the end of the body is dropped, as the SSE spec says (it may be incomplete). Rejects
 * like `reader.read()` does (a network error, or AbortError when the fetch's signal aborts).
 * Leaving the loop early cancels the body, which releases the connection.
 */
export async function* readServerSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<EventSourceMessage, void, undefined> {
  const pending: EventSourceMessage[] = [];
  // Comments (`: ping` heartbeats) and `retry:` fields are not needed: reconnection timing is
  // this library's own backoff.
  const parser = createParser({ onEvent: (message) => pending.push(message) });
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        parser.feed(decoder.decode());
      } else {
        parser.feed(decoder.decode(value, { stream: true }));
      }
      while (pending.length > 0) {
        const message = pending.shift();
        if (message) yield message;
      }
      if (finished) return;
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
