// Turns an OpenAI-compatible response (an SSE stream of chat.completion.chunk, or one
// chat.completion) into StreamEvents.
import type { EventSourceMessage } from 'eventsource-parser';
import { SluiceError } from '../../errors/sluice-error.js';
import type { FinishReason, StreamEvent, Usage } from '../../contract/stream-event.js';
import { completionSchema, readChunk, type ChunkUsage } from './schema.js';
import { errorDetailOf, streamError } from './errors.js';
import { createTextChunkReader } from './fast-chunk.js';
import { EventBatcher, SseBodyDecoder, type BodyDecoder, type SseEventDecoder } from '../shared/body-decoder.js';

export interface DecodeOptions {
  provider: string;
  secrets: readonly string[];
}

export interface StreamDecodeOptions extends DecodeOptions {
  /** Largest event accepted (sse-reader.ts). */
  maxEventBytes: number;
}

/**
 * Decodes an SSE body of chunk events; each read's events are one batch. Compatible servers
 * differ: some add `event:` lines or comments, some omit `data: [DONE]` and just close. A stream
 * counts as complete after `[DONE]` or a `finish_reason`; one that closes with neither is reported
 * as interrupted, never as an empty success.
 *
 * The SSE scanner hands each event straight to the chunk decoder, and a text chunk in the learned
 * frame is read from the line's bytes (fast-chunk.ts): one layer, no message objects, no string of
 * the whole line (decision 0026).
 */
export function chunkStreamDecoder(options: StreamDecodeOptions): BodyDecoder {
  return new SseBodyDecoder<string>(options, new ChunkDecoder(options));
}

/** The chunk events of one stream, as the scanner completes them. */
class ChunkDecoder extends EventBatcher implements SseEventDecoder<string> {
  done = false;
  finishReason: FinishReason | undefined;
  usage: Usage | undefined;
  readonly #options: DecodeOptions;
  readonly #textChunks = createTextChunkReader();

  constructor(options: DecodeOptions) {
    super();
    this.#options = options;
  }

  /** The closing events: the usage, if the upstream gave it, and `end`; a stream with neither `[DONE]` nor a finish reason was cut short. */
  finish(): void {
    if (!this.done && this.finishReason === undefined) {
      const { provider } = this.#options;
      throw new SluiceError('upstream_stream_interrupted', { provider, message: `Provider "${provider}" closed the stream before the answer was complete.` });
    }
    this.done = true;
    if (this.usage) this.pending.push({ type: 'usage', usage: this.usage });
    this.pending.push({ type: 'end', finishReason: this.finishReason ?? 'stop' });
  }

  readDataLine(bytes: Buffer, start: number, end: number): string | undefined {
    return this.done ? undefined : this.#textChunks.read(bytes, start, end);
  }

  dataLineEvent(text: string): void {
    if (!this.done && text !== '') this.pending.push({ type: 'text-delta', text });
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
    if (chunk.content) this.pending.push({ type: 'text-delta', text: chunk.content });
    for (const call of chunk.toolCalls) this.pending.push(toolCallDelta(call.index, call.id, call.name, call.arguments));
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
