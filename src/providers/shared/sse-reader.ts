// Reads an upstream SSE body into whole events. Bytes go through one streaming TextDecoder per
// stream (so a UTF-8 character split across network reads is never damaged, and one leading BOM is
// dropped), then through eventsource-parser, the one SSE parser of the program.
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { SluiceError } from '../../errors/sluice-error.js';

/** `data: ` plus a CR held back until the next read shows whether an LF follows it. */
const unfinishedLineOverhead = 'data: '.length + 1;

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
    // The parser bounds what it holds between reads: the data of the event so far plus the
    // unfinished line, whose `data: ` prefix and a held CR also count. That slack keeps it from
    // refusing an event that fits when the event arrives in pieces; onEvent then checks the exact
    // size, so an event is judged the same however the body is split. (A comment or `event:`
    // line longer than the limit is refused too, but only when it is split across reads.)
    maxBufferSize: options.maxEventBytes + unfinishedLineOverhead,
    onEvent: (event) => {
      if (failure) return;
      if (event.data.length > options.maxEventBytes) failure = tooLarge();
      else ready.push(event);
    },
    onError: (error) => {
      if (error.type === 'max-buffer-size-exceeded') failure ??= tooLarge();
      // Unknown fields and bogus `retry` values are ignored, as the SSE spec says.
    },
  });
  for await (const chunk of body) {
    parser.feed(decoder.decode(chunk, { stream: true }));
    // Events completed before a failure in the same read are still delivered, as they would be
    // had the failing event arrived in a later read.
    if (ready.length > 0) {
      const batch = ready;
      ready = [];
      yield batch;
    }
    if (failure) throw failure;
  }
  parser.feed(decoder.decode() + '\n\n');
  if (ready.length > 0) yield ready;
  if (failure) throw failure;
}
