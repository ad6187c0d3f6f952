// Decodes ERNIE answers: SSE `data:` objects with a `result` piece each and `is_end` on the last
// (usage is cumulative: the last one counts), or one object when not streaming. An
// `error_code` object can arrive either way and is thrown as an error.
import type { EventSourceMessage } from 'eventsource-parser';
import { SluiceError } from '../../errors/sluice-error.js';
import type { StreamEvent, Usage } from '../../contract/stream-event.js';
import { isObject, numberAt, objectAt, stringAt } from '../shared/json.js';
import { qianfanError, qianfanErrorOf } from './errors.js';

export interface DecodeOptions {
  provider: string;
  secrets: readonly string[];
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

export async function* decodeResultStream(batches: AsyncIterable<EventSourceMessage[]>, options: DecodeOptions): AsyncGenerator<StreamEvent[]> {
  let usage: Usage | undefined;
  let ended = false;
  let truncated = false;
  for await (const batch of batches) {
    const events: StreamEvent[] = [];
    let failure: Error | undefined;
    for (const message of batch) {
      if (message.data === '') continue;
      let json: unknown;
      try {
        json = parse(message.data, options);
      } catch (error) {
        failure = error as Error;
        break;
      }
      const result = stringAt(json, 'result');
      if (result) events.push({ type: 'text-delta', text: result });
      usage = usageOf(json) ?? usage;
      if (isObject(json) && json['is_truncated'] === true) truncated = true;
      if (isObject(json) && json['is_end'] === true) {
        ended = true;
        break;
      }
    }
    if (events.length > 0) yield events;
    if (failure) throw failure;
    if (ended) break;
  }
  if (!ended) throw new SluiceError('upstream_stream_interrupted', { provider: options.provider, message: `Provider "${options.provider}" (Qianfan) closed the stream before is_end.` });
  yield usage ? [{ type: 'usage', usage }, { type: 'end', finishReason: truncated ? 'length' : 'stop' }] : [{ type: 'end', finishReason: truncated ? 'length' : 'stop' }];
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
