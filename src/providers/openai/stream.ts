// Turns an OpenAI-compatible response (an SSE stream of chat.completion.chunk, or one
// chat.completion) into StreamEvents.
import type { EventSourceMessage } from 'eventsource-parser';
import { SluiceError } from '../../errors/sluice-error.js';
import type { FinishReason, StreamEvent, Usage } from '../../relay/stream-event.js';
import { chunkSchema, completionSchema, type OpenAiUsage } from './schema.js';
import { errorDetailOf, streamError } from './errors.js';

export interface DecodeOptions {
  provider: string;
  secrets: readonly string[];
}

/**
 * Decodes chunk events. Compatible servers differ: some add `event:` lines or comments, some omit
 * `data: [DONE]` and just close. A stream counts as complete after `[DONE]` or a `finish_reason`;
 * one that closes with neither is reported as interrupted, never as an empty success.
 */
export async function* decodeChunkStream(events: AsyncIterable<EventSourceMessage>, options: DecodeOptions): AsyncGenerator<StreamEvent> {
  let finishReason: FinishReason | undefined;
  let usage: Usage | undefined;
  let done = false;
  for await (const event of events) {
    const data = event.data;
    if (data === '[DONE]') {
      done = true;
      break;
    }
    if (data === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      throw new SluiceError('upstream_protocol_error', {
        provider: options.provider,
        message: `Provider "${options.provider}" sent an event that is not JSON: ${JSON.stringify(data.slice(0, 120))}`,
      });
    }
    if (event.event === 'error' || (typeof json === 'object' && json !== null && 'error' in json)) {
      throw streamError(errorDetailOf(json), options.provider, options.secrets);
    }
    const parsed = chunkSchema.safeParse(json);
    if (!parsed.success) {
      throw new SluiceError('upstream_protocol_error', {
        provider: options.provider,
        message: `Provider "${options.provider}" sent a chunk of an unexpected shape (${parsed.error.issues[0]?.path.join('.') ?? '?'}).`,
      });
    }
    const chunk = parsed.data;
    if (chunk.usage) usage = toUsage(chunk.usage);
    const choice = chunk.choices?.[0];
    if (!choice) continue;
    const content = choice.delta?.content;
    if (content) yield { type: 'text-delta', text: content };
    for (const call of choice.delta?.tool_calls ?? []) yield toolCallDelta(call.index ?? 0, call.id, call.function?.name, call.function?.arguments);
    if (choice.finish_reason) finishReason = toFinishReason(choice.finish_reason);
  }
  if (!done && finishReason === undefined) {
    throw new SluiceError('upstream_stream_interrupted', {
      provider: options.provider,
      message: `Provider "${options.provider}" closed the stream before the answer was complete.`,
    });
  }
  if (usage) yield { type: 'usage', usage };
  yield { type: 'end', finishReason: finishReason ?? 'stop' };
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

function toUsage(usage: NonNullable<OpenAiUsage>): Usage {
  return {
    promptTokens: usage.prompt_tokens,
    completionTokens: usage.completion_tokens,
    totalTokens: usage.total_tokens ?? usage.prompt_tokens + usage.completion_tokens,
    estimated: false,
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
