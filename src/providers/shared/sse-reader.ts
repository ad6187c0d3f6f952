// Reads an upstream SSE body into whole events. Bytes go through one streaming TextDecoder per
// stream (so a UTF-8 character split across network reads is never damaged, and one leading BOM is
// dropped), then through eventsource-parser, the one SSE parser of the program.
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { SluiceError } from '../../errors/sluice-error.js';

export interface SseReadOptions {
  /** Largest event accepted, in UTF-16 code units of decoded text (≈ bytes for ASCII). */
  maxEventBytes: number;
  provider: string;
}

/**
 * Yields the complete events of an SSE body, one array per network read that completed any.
 *
 * Decision: an event left without its closing blank line when the upstream closes the stream is
 * still dispatched. Browsers discard it (WHATWG), but several OpenAI-compatible servers end their
 * last event with a single newline, and an upstream reader should lose nothing it was sent.
 */
export async function* readSseEvents(body: AsyncIterable<Uint8Array>, options: SseReadOptions): AsyncGenerator<EventSourceMessage[]> {
  const decoder = new TextDecoder('utf-8');
  let ready: EventSourceMessage[] = [];
  let failure: SluiceError | undefined;
  const tooLarge = () =>
    new SluiceError('upstream_event_too_large', {
      provider: options.provider,
      message: `Provider "${options.provider}" sent an event larger than ${options.maxEventBytes.toString()} bytes (maxEventBytes); raise the limit in the provider's config if this is expected.`,
    });
  const parser = createParser({
    // Bounds what the parser holds between reads; an event that arrives whole in one read is
    // checked in onEvent instead.
    maxBufferSize: options.maxEventBytes,
    onEvent: (event) => {
      if (event.data.length > options.maxEventBytes) failure ??= tooLarge();
      else ready.push(event);
    },
    onError: (error) => {
      if (error.type === 'max-buffer-size-exceeded') failure ??= tooLarge();
      // Unknown fields and bogus `retry` values are ignored, as the SSE spec says.
    },
  });
  for await (const chunk of body) {
    parser.feed(decoder.decode(chunk, { stream: true }));
    if (failure) throw failure;
    if (ready.length > 0) {
      const batch = ready;
      ready = [];
      yield batch;
    }
  }
  parser.feed(decoder.decode() + '\n\n');
  if (failure) throw failure;
  if (ready.length > 0) yield ready;
}
