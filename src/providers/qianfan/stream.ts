// Decodes ERNIE answers: SSE `data:` objects with a `result` piece each and `is_end` on the last
// (usage is cumulative: the last one counts), or one object when not streaming. An
// `error_code` object can arrive either way and is thrown as an error.
import type { EventSourceMessage } from 'eventsource-parser';
import { SluiceError } from '../../errors/sluice-error.js';
import type { StreamEvent, Usage } from '../../contract/stream-event.js';
import { isObject, numberAt, objectAt, stringAt } from '../shared/json.js';
import { qianfanError, qianfanErrorOf } from './errors.js';
import { EventBatcher, SseBodyDecoder, type BodyDecoder, type SseEventDecoder } from '../shared/body-decoder.js';

export interface DecodeOptions {
  provider: string;
  secrets: readonly string[];
}

export interface StreamDecodeOptions extends DecodeOptions {
  /** Largest event accepted (sse-reader.ts). */
  maxEventBytes: number;
}

function usageOf(json: unknown): Usage | undefined {
  const usage = objectAt(json, 'usage');
  if (!usage) return undefined;
  const promptTokens = numberAt(usage, 'prompt_tokens') ?? 0;
  const completionTokens = numberAt(usage, 'completion_tokens') ?? 0;
  return { promptTokens, completionTokens, totalTokens: numberAt(usage, 'total_tokens') ?? promptTokens + completionTokens, estimated: false };
}

function parse(data: string, options: DecodeOptions): unknown {
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    throw new SluiceError('upstream_protocol_error', { provider: options.provider, message: `Provider "${options.provider}" (Qianfan) sent an event that is not JSON.` });
  }
  const error = qianfanErrorOf(json);
  if (error) throw qianfanError(error.code, error.message, options.provider, options.secrets);
  if (!isObject(json)) throw new SluiceError('upstream_protocol_error', { provider: options.provider, message: `Provider "${options.provider}" (Qianfan) sent an event that is not an object.` });
  return json;
}

/** A streamed ERNIE body, decoded as its reads arrive (decision 0034); `is_end` ends it. */
export function resultStreamDecoder(options: StreamDecodeOptions): BodyDecoder {
  return new SseBodyDecoder(options, new ResultStreamDecoder(options));
}

class ResultStreamDecoder extends EventBatcher implements SseEventDecoder {
  done = false;
  readonly #options: DecodeOptions;
  /** Cumulative: the last one counts. */
  #usage: Usage | undefined;
  #truncated = false;

  constructor(options: DecodeOptions) {
    super();
    this.#options = options;
  }

  message(message: EventSourceMessage): void {
    if (this.done || message.data === '') return;
    const json = parse(message.data, this.#options);
    const result = stringAt(json, 'result');
    if (result) this.pending.push({ type: 'text-delta', text: result });
    this.#usage = usageOf(json) ?? this.#usage;
    if (isObject(json) && json['is_truncated'] === true) this.#truncated = true;
    if (isObject(json) && json['is_end'] === true) this.done = true;
  }

  finish(): void {
    const { provider } = this.#options;
    if (!this.done) throw new SluiceError('upstream_stream_interrupted', { provider, message: `Provider "${provider}" (Qianfan) closed the stream before is_end.` });
    if (this.#usage) this.pending.push({ type: 'usage', usage: this.#usage });
    this.pending.push({ type: 'end', finishReason: this.#truncated ? 'length' : 'stop' });
  }
}

export function decodeResult(text: string, options: DecodeOptions): StreamEvent[] {
  const json = parse(text, options);
  const events: StreamEvent[] = [];
  const result = stringAt(json, 'result');
  if (result) events.push({ type: 'text-delta', text: result });
  const usage = usageOf(json);
  if (usage) events.push({ type: 'usage', usage });
  events.push({ type: 'end', finishReason: isObject(json) && json['is_truncated'] === true ? 'length' : 'stop' });
  return events;
}
