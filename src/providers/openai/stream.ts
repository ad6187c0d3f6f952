// Turns an OpenAI-compatible response (an SSE stream of chat.completion.chunk, or one
// chat.completion) into StreamEvents.
import type { EventSourceMessage } from 'eventsource-parser';
import { SluiceError } from '../../errors/sluice-error.js';
import type { FinishReason, StreamEvent, Usage } from '../../contract/stream-event.js';
import { completionSchema, readChunk, type ChunkUsage } from './schema.js';
import { errorDetailOf, streamError } from './errors.js';
import { createTextChunkReader } from './fast-chunk.js';
import { readsOf, SseScanner, type SseSink } from '../shared/sse-reader.js';

export interface DecodeOptions {
  provider: string;
  secrets: readonly string[];
}

export interface StreamDecodeOptions extends DecodeOptions {
  /** Largest event accepted (sse-reader.ts). */
  maxEventBytes: number;
}

/**
 * Decodes an SSE body of chunk events into batches of StreamEvents, one batch per network read
 * that completed any. Compatible servers differ: some add `event:` lines or comments, some omit
 * `data: [DONE]` and just close. A stream counts as complete after `[DONE]` or a `finish_reason`;
 * one that closes with neither is reported as interrupted, never as an empty success.
 *
 * The SSE scanner hands each event straight to the chunk decoder, and a text chunk in the learned
 * frame is read from the line's bytes (fast-chunk.ts): one layer, no message objects, no string of
 * the whole line (decision 0026).
 */
export async function* decodeChunkStream(body: AsyncIterable<Uint8Array>, options: StreamDecodeOptions): AsyncGenerator<StreamEvent[]> {
  const decoder = new ChunkDecoder(options);
  const scanner = new SseScanner<string>(options, decoder);
  for await (const read of readsOf(body)) {
    const failure = feed(() => scanner.feed(read)) ?? scanner.failure;
    // What arrived before a failure in the same read still reaches the client.
    const events = decoder.take();
    if (events !== undefined) yield events;
    if (failure !== undefined) throw failure;
    if (decoder.done) break;
  }
  if (!decoder.done) {
    const failure = feed(() => scanner.finish()) ?? scanner.failure;
    const events = decoder.take();
    if (events !== undefined) yield events;
    if (failure !== undefined) throw failure;
  }
  if (!decoder.done && decoder.finishReason === undefined) {
    throw new SluiceError('upstream_stream_interrupted', {
      provider: options.provider,
      message: `Provider "${options.provider}" closed the stream before the answer was complete.`,
    });
  }
  const end: StreamEvent = { type: 'end', finishReason: decoder.finishReason ?? 'stop' };
  yield decoder.usage ? [{ type: 'usage', usage: decoder.usage }, end] : [end];
}

/** Runs the scanner; what the decoder threw (an error chunk, a malformed one) is returned. */
function feed(scan: () => void): Error | undefined {
  try {
    scan();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error : new SluiceError('internal_error', { cause: error });
  }
}

/** The chunk events of one stream, as the scanner completes them; the batch of the current read. */
class ChunkDecoder implements SseSink<string> {
  done = false;
  finishReason: FinishReason | undefined;
  usage: Usage | undefined;
  readonly #options: DecodeOptions;
  readonly #textChunks = createTextChunkReader();
  #events: StreamEvent[] = [];

  constructor(options: DecodeOptions) {
    this.#options = options;
  }

  /** The events decoded since the last call, or undefined when there are none. */
  take(): StreamEvent[] | undefined {
    if (this.#events.length === 0) return undefined;
    const events = this.#events;
    this.#events = [];
    return events;
  }

  readDataLine(bytes: Buffer, start: number, end: number): string | undefined {
    return this.done ? undefined : this.#textChunks.read(bytes, start, end);
  }

  dataLineEvent(text: string): void {
    if (!this.done && text !== '') this.#events.push({ type: 'text-delta', text });
  }

  message(message: EventSourceMessage): void {
    const data = message.data;
    if (this.done || data === '') return;
    if (data === '[DONE]') {
      this.done = true;
      return;
    }
    const { provider, secrets } = this.#options;
    const json = parseJson(data, provider);
    const chunk = readChunk(json);
    if (message.event === undefined) this.#textChunks.learn(data, chunk);
    if (chunk.kind === 'error' || message.event === 'error') throw streamError(errorDetailOf(json), provider, secrets);
    if (chunk.kind === 'invalid') {
      throw new SluiceError('upstream_protocol_error', {
        provider,
        message: `Provider "${provider}" sent a chunk of an unexpected shape (${chunk.problem}).`,
      });
    }
    if (chunk.usage) this.usage = toUsage(chunk.usage);
    if (chunk.content) this.#events.push({ type: 'text-delta', text: chunk.content });
    for (const call of chunk.toolCalls) this.#events.push(toolCallDelta(call.index, call.id, call.name, call.arguments));
    if (chunk.finishReason) this.finishReason = toFinishReason(chunk.finishReason);
  }
}

function parseJson(data: string, provider: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw new SluiceError('upstream_protocol_error', {
      provider,
      message: `Provider "${provider}" sent an event that is not JSON: ${JSON.stringify(data.slice(0, 120))}`,
    });
  }
}

/** Decodes a non-streamed chat.completion into the same events a stream would give. */
export function decodeCompletion(json: unknown, options: DecodeOptions): StreamEvent[] {
  const parsed = completionSchema.safeParse(json);
  if (!parsed.success) {
    throw new SluiceError('upstream_protocol_error', {
      provider: options.provider,
      message: `Provider "${options.provider}" sent a completion of an unexpected shape (${parsed.error.issues[0]?.path.join('.') ?? '?'}).`,
    });
  }
  const events: StreamEvent[] = [];
  const [choice] = parsed.data.choices;
  if (!choice) return events;
  if (choice.message.content) events.push({ type: 'text-delta', text: choice.message.content });
  (choice.message.tool_calls ?? []).forEach((call, index) => events.push(toolCallDelta(index, call.id, call.function?.name, call.function?.arguments)));
  if (parsed.data.usage) events.push({ type: 'usage', usage: toUsage(parsed.data.usage) });
  events.push({ type: 'end', finishReason: toFinishReason(choice.finish_reason ?? 'stop') });
  return events;
}

function toolCallDelta(index: number, id: string | null | undefined, name: string | null | undefined, argumentsDelta: string | null | undefined): StreamEvent {
  const event: Extract<StreamEvent, { type: 'tool-call-delta' }> = { type: 'tool-call-delta', index };
  if (id) event.id = id;
  if (name) event.name = name;
  if (argumentsDelta) event.argumentsDelta = argumentsDelta;
  return event;
}

function toUsage(usage: ChunkUsage): Usage {
  const cached = usage.prompt_tokens_details?.cached_tokens;
  return {
    promptTokens: usage.prompt_tokens,
    completionTokens: usage.completion_tokens,
    totalTokens: usage.total_tokens ?? usage.prompt_tokens + usage.completion_tokens,
    estimated: false,
    // Part of prompt_tokens (docs/providers/openai.md); capped so a confused upstream cannot price below zero.
    ...(cached !== undefined && cached > 0 ? { cachedPromptTokens: Math.min(cached, usage.prompt_tokens) } : {}),
  };
}

function toFinishReason(reason: string): FinishReason {
  switch (reason) {
    case 'length':
    case 'tool_calls':
    case 'content_filter':
      return reason;
    case 'function_call':
      return 'tool_calls';
    default:
      return 'stop';
  }
}
