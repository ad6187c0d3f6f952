// Turns an OpenAI-compatible response (an SSE stream of chat.completion.chunk, or one
// chat.completion) into StreamEvents.
import type { EventSourceMessage } from 'eventsource-parser';
import { SluiceError } from '../../errors/sluice-error.js';
import type { FinishReason, StreamEvent, Usage } from '../../contract/stream-event.js';
import { completionSchema, readChunk, type ChunkUsage } from './schema.js';
import { errorDetailOf, streamError } from './errors.js';
import { createTextChunkReader } from './fast-chunk.js';

export interface DecodeOptions {
  provider: string;
  secrets: readonly string[];
}

/**
 * Decodes batches of chunk events into batches of StreamEvents. Compatible servers differ: some
 * add `event:` lines or comments, some omit `data: [DONE]` and just close. A stream counts as
 * complete after `[DONE]` or a `finish_reason`; one that closes with neither is reported as
 * interrupted, never as an empty success.
 */
export async function* decodeChunkStream(batches: AsyncIterable<EventSourceMessage[]>, options: DecodeOptions): AsyncGenerator<StreamEvent[]> {
  let finishReason: FinishReason | undefined;
  let usage: Usage | undefined;
  let done = false;
  const textChunks = createTextChunkReader();
  for await (const batch of batches) {
    const events: StreamEvent[] = [];
    let failure: Error | undefined;
    try {
      for (const message of batch) {
        const data = message.data;
        if (data === '[DONE]') {
          done = true;
          break;
        }
        if (data === '') continue;
        const fast = message.event === undefined ? textChunks.read(data) : undefined;
        if (fast) {
          if (fast.content) events.push({ type: 'text-delta', text: fast.content });
          continue;
        }
        const json = parseJson(data, options.provider);
        const chunk = readChunk(json);
        if (message.event === undefined) textChunks.learn(data, chunk);
        if (chunk.kind === 'error' || message.event === 'error') throw streamError(errorDetailOf(json), options.provider, options.secrets);
        if (chunk.kind === 'invalid') {
          throw new SluiceError('upstream_protocol_error', {
            provider: options.provider,
            message: `Provider "${options.provider}" sent a chunk of an unexpected shape (${chunk.problem}).`,
          });
        }
        if (chunk.usage) usage = toUsage(chunk.usage);
        if (chunk.content) events.push({ type: 'text-delta', text: chunk.content });
        for (const call of chunk.toolCalls) events.push(toolCallDelta(call.index, call.id, call.name, call.arguments));
        if (chunk.finishReason) finishReason = toFinishReason(chunk.finishReason);
      }
    } catch (error) {
      failure = error instanceof Error ? error : new SluiceError('internal_error', { cause: error });
    }
    // What arrived before a failure in the same read still reaches the client.
    if (events.length > 0) yield events;
    if (failure !== undefined) throw failure;
    if (done) break;
  }
  if (!done && finishReason === undefined) {
    throw new SluiceError('upstream_stream_interrupted', {
      provider: options.provider,
      message: `Provider "${options.provider}" closed the stream before the answer was complete.`,
    });
  }
  yield usage ? [{ type: 'usage', usage }, { type: 'end', finishReason: finishReason ?? 'stop' }] : [{ type: 'end', finishReason: finishReason ?? 'stop' }];
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
