// Turns Messages API responses into StreamEvents: the SSE stream (switching on the event name,
// falling back to the data's `type`, as Anthropic's own SDK does) and the non-streamed message.
import type { EventSourceMessage } from 'eventsource-parser';
import { SluiceError } from '../../errors/sluice-error.js';
import type { FinishReason, StreamEvent, Usage } from '../../contract/stream-event.js';
import { anthropicError, errorDetailOf } from './errors.js';
import { isObject, numberAt, objectAt, stringAt } from '../shared/json.js';

export interface DecodeOptions {
  provider: string;
  secrets: readonly string[];
}

/** The `end` event of a message that stopped for `reason`, naming the stop sequence when it was one. */
function endEvent(reason: string | undefined, stopSequence: string | undefined): StreamEvent {
  return reason === 'stop_sequence' && stopSequence !== undefined ? { type: 'end', finishReason: 'stop', stopSequence } : { type: 'end', finishReason: toFinishReason(reason) };
}

/** `stop_reason` → finish reason (docs/providers/anthropic.md): pause_turn is reported as a normal stop. */
export function toFinishReason(reason: string | undefined): FinishReason {
  switch (reason) {
    case 'max_tokens':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return 'stop';
  }
}

export async function* decodeMessageStream(batches: AsyncIterable<EventSourceMessage[]>, options: DecodeOptions): AsyncGenerator<StreamEvent[]> {
  let inputTokens = 0;
  let outputTokens = 0;
  let cacheReadTokens = 0;
  let sawUsage = false;
  let stopReason: string | undefined;
  let stopSequence: string | undefined;
  let stopped = false;
  // Content block index → tool-call index (tool calls are numbered among tool blocks only).
  const toolIndexByBlock = new Map<number, number>();
  for await (const batch of batches) {
    const events: StreamEvent[] = [];
    let failure: Error | undefined;
    for (const message of batch) {
      let data: unknown;
      try {
        data = JSON.parse(message.data);
      } catch {
        failure = new SluiceError('upstream_protocol_error', { provider: options.provider, message: `Provider "${options.provider}" sent an event that is not JSON: ${JSON.stringify(message.data.slice(0, 120))}` });
        break;
      }
      const type = message.event ?? stringAt(data, 'type');
      switch (type) {
        case 'message_start': {
          const usage = objectAt(objectAt(data, 'message'), 'usage');
          cacheReadTokens = numberAt(usage, 'cache_read_input_tokens') ?? 0;
          // input_tokens leaves out the tokens read from the cache (docs/providers/anthropic.md);
          // they are prompt tokens all the same, and Usage counts them in promptTokens.
          inputTokens = (numberAt(usage, 'input_tokens') ?? 0) + cacheReadTokens;
          outputTokens = numberAt(usage, 'output_tokens') ?? 0;
          sawUsage = usage !== undefined;
          break;
        }
        case 'content_block_start': {
          const block = objectAt(data, 'content_block');
          const blockIndex = numberAt(data, 'index') ?? 0;
          if (stringAt(block, 'type') === 'tool_use') {
            const index = toolIndexByBlock.size;
            toolIndexByBlock.set(blockIndex, index);
            const event: Extract<StreamEvent, { type: 'tool-call-delta' }> = { type: 'tool-call-delta', index };
            const id = stringAt(block, 'id');
            const name = stringAt(block, 'name');
            if (id) event.id = id;
            if (name) event.name = name;
            events.push(event);
          } else {
            const text = stringAt(block, 'text');
            if (text) events.push({ type: 'text-delta', text });
          }
          break;
        }
        case 'content_block_delta': {
          const delta = objectAt(data, 'delta');
          const deltaType = stringAt(delta, 'type');
          if (deltaType === 'text_delta') {
            const text = stringAt(delta, 'text');
            if (text) events.push({ type: 'text-delta', text });
          } else if (deltaType === 'input_json_delta') {
            const index = toolIndexByBlock.get(numberAt(data, 'index') ?? -1);
            const partial = stringAt(delta, 'partial_json');
            if (index !== undefined && partial) events.push({ type: 'tool-call-delta', index, argumentsDelta: partial });
          }
          // thinking, signature and citation deltas are not part of the answer text.
          break;
        }
        case 'message_delta': {
          stopReason = stringAt(objectAt(data, 'delta'), 'stop_reason') ?? stopReason;
          stopSequence = stringAt(objectAt(data, 'delta'), 'stop_sequence') ?? stopSequence;
          const output = numberAt(objectAt(data, 'usage'), 'output_tokens');
          if (output !== undefined) {
            // Cumulative, per the API: the last one is the total.
            outputTokens = output;
            sawUsage = true;
          }
          break;
        }
        case 'message_stop':
          stopped = true;
          break;
        case 'error':
          failure = anthropicError({ detail: errorDetailOf(data), provider: options.provider, secrets: options.secrets });
          break;
        default:
          // ping, content_block_stop, and event types added later: nothing to relay.
          break;
      }
      if (failure || stopped) break;
    }
    if (events.length > 0) yield events;
    if (failure) throw failure;
    if (stopped) break;
  }
  if (!stopped) {
    throw new SluiceError('upstream_stream_interrupted', { provider: options.provider, message: `Provider "${options.provider}" closed the stream before message_stop.` });
  }
  const final: StreamEvent[] = [];
  if (sawUsage) final.push({ type: 'usage', usage: anthropicUsage(inputTokens, outputTokens, cacheReadTokens) });
  final.push(endEvent(stopReason, stopSequence));
  yield final;
}

/** A non-streamed `message` as the events a stream would have given. */
export function decodeMessage(json: unknown, options: DecodeOptions): StreamEvent[] {
  if (!isObject(json) || !Array.isArray(json['content'])) {
    throw new SluiceError('upstream_protocol_error', { provider: options.provider, message: `Provider "${options.provider}" sent a message without a content list.` });
  }
  const events: StreamEvent[] = [];
  let toolIndex = 0;
  for (const block of json['content']) {
    if (stringAt(block, 'type') === 'text') {
      const text = stringAt(block, 'text');
      if (text) events.push({ type: 'text-delta', text });
    } else if (stringAt(block, 'type') === 'tool_use') {
      const event: Extract<StreamEvent, { type: 'tool-call-delta' }> = { type: 'tool-call-delta', index: toolIndex++, argumentsDelta: JSON.stringify(isObject(block) ? (block['input'] ?? {}) : {}) };
      const id = stringAt(block, 'id');
      const name = stringAt(block, 'name');
      if (id) event.id = id;
      if (name) event.name = name;
      events.push(event);
    }
  }
  const usage = objectAt(json, 'usage');
  if (usage) {
    const cacheRead = numberAt(usage, 'cache_read_input_tokens') ?? 0;
    events.push({ type: 'usage', usage: anthropicUsage((numberAt(usage, 'input_tokens') ?? 0) + cacheRead, numberAt(usage, 'output_tokens') ?? 0, cacheRead) });
  }
  events.push(endEvent(stringAt(json, 'stop_reason'), stringAt(json, 'stop_sequence')));
  return events;
}

/** Usage with the cache reads counted in the prompt and named as cached. */
function anthropicUsage(promptTokens: number, completionTokens: number, cacheReadTokens: number): Usage {
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, estimated: false, ...(cacheReadTokens > 0 ? { cachedPromptTokens: cacheReadTokens } : {}) };
}
