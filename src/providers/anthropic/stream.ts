// Turns Messages API responses into StreamEvents: the SSE stream (switching on the event name,
// falling back to the data's `type`, as Anthropic's own SDK does) and the non-streamed message.
import type { EventSourceMessage } from 'eventsource-parser';
import { SluiceError } from '../../errors/sluice-error.js';
import type { FinishReason, StreamEvent, Usage } from '../../contract/stream-event.js';
import { anthropicError, errorDetailOf } from './errors.js';
import { isObject, numberAt, objectAt, stringAt } from '../shared/json.js';
import { EventBatcher, SseBodyDecoder, type BodyDecoder, type SseEventDecoder } from '../shared/body-decoder.js';

export interface DecodeOptions {
  provider: string;
  secrets: readonly string[];
}

export interface StreamDecodeOptions extends DecodeOptions {
  /** Largest event accepted (sse-reader.ts). */
  maxEventBytes: number;
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

/** A streamed Messages API body, decoded as its reads arrive (decision 0034). */
export function messageStreamDecoder(options: StreamDecodeOptions): BodyDecoder {
  return new SseBodyDecoder(options, new MessageStreamDecoder(options));
}

/** The events of one Messages stream, as the SSE scanner completes them; `message_stop` ends it. */
class MessageStreamDecoder extends EventBatcher implements SseEventDecoder {
  done = false;
  readonly #options: DecodeOptions;
  #inputTokens = 0;
  #outputTokens = 0;
  #cacheReadTokens = 0;
  #sawUsage = false;
  #stopReason: string | undefined;
  #stopSequence: string | undefined;
  /** Content block index → tool-call index (tool calls are numbered among tool blocks only). */
  readonly #toolIndexByBlock = new Map<number, number>();

  constructor(options: DecodeOptions) {
    super();
    this.#options = options;
  }

  message(message: EventSourceMessage): void {
    if (this.done) return;
    const { provider, secrets } = this.#options;
    let data: unknown;
    try {
      data = JSON.parse(message.data);
    } catch {
      throw new SluiceError('upstream_protocol_error', { provider, message: `Provider "${provider}" sent an event that is not JSON: ${JSON.stringify(message.data.slice(0, 120))}` });
    }
    const type = message.event ?? stringAt(data, 'type');
    switch (type) {
      case 'message_start': {
        const usage = objectAt(objectAt(data, 'message'), 'usage');
        this.#cacheReadTokens = numberAt(usage, 'cache_read_input_tokens') ?? 0;
        // input_tokens leaves out the tokens read from the cache (docs/providers/anthropic.md);
        // they are prompt tokens all the same, and Usage counts them in promptTokens.
        this.#inputTokens = (numberAt(usage, 'input_tokens') ?? 0) + this.#cacheReadTokens;
        this.#outputTokens = numberAt(usage, 'output_tokens') ?? 0;
        this.#sawUsage = usage !== undefined;
        break;
      }
      case 'content_block_start': {
        const block = objectAt(data, 'content_block');
        const blockIndex = numberAt(data, 'index') ?? 0;
        if (stringAt(block, 'type') === 'tool_use') {
          const index = this.#toolIndexByBlock.size;
          this.#toolIndexByBlock.set(blockIndex, index);
          const event: Extract<StreamEvent, { type: 'tool-call-delta' }> = { type: 'tool-call-delta', index };
          const id = stringAt(block, 'id');
          const name = stringAt(block, 'name');
          if (id) event.id = id;
          if (name) event.name = name;
          this.pending.push(event);
        } else {
          const text = stringAt(block, 'text');
          if (text) this.pending.push({ type: 'text-delta', text });
        }
        break;
      }
      case 'content_block_delta': {
        const delta = objectAt(data, 'delta');
        const deltaType = stringAt(delta, 'type');
        if (deltaType === 'text_delta') {
          const text = stringAt(delta, 'text');
          if (text) this.pending.push({ type: 'text-delta', text });
        } else if (deltaType === 'input_json_delta') {
          const index = this.#toolIndexByBlock.get(numberAt(data, 'index') ?? -1);
          const partial = stringAt(delta, 'partial_json');
          if (index !== undefined && partial) this.pending.push({ type: 'tool-call-delta', index, argumentsDelta: partial });
        }
        // thinking, signature and citation deltas are not part of the answer text.
        break;
      }
      case 'message_delta': {
        this.#stopReason = stringAt(objectAt(data, 'delta'), 'stop_reason') ?? this.#stopReason;
        this.#stopSequence = stringAt(objectAt(data, 'delta'), 'stop_sequence') ?? this.#stopSequence;
        const output = numberAt(objectAt(data, 'usage'), 'output_tokens');
        if (output !== undefined) {
          // Cumulative, per the API: the last one is the total.
          this.#outputTokens = output;
          this.#sawUsage = true;
        }
        break;
      }
      case 'message_stop':
        this.done = true;
        break;
      case 'error':
        throw anthropicError({ detail: errorDetailOf(data), provider, secrets });
      default:
        // ping, content_block_stop, and event types added later: nothing to relay.
        break;
    }
  }

  finish(): void {
    const { provider } = this.#options;
    if (!this.done) throw new SluiceError('upstream_stream_interrupted', { provider, message: `Provider "${provider}" closed the stream before message_stop.` });
    if (this.#sawUsage) this.pending.push({ type: 'usage', usage: anthropicUsage(this.#inputTokens, this.#outputTokens, this.#cacheReadTokens) });
    this.pending.push(endEvent(this.#stopReason, this.#stopSequence));
  }
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
