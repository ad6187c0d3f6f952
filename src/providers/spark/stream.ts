// Decodes Spark response frames: one JSON text frame each, `header.status` 0 first, 1 middle,
// 2 last (with usage). A frame with `header.code != 0` is an error carrying the code and sid.
import { SluiceError } from '../../errors/sluice-error.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { isObject, numberAt, objectAt, stringAt } from '../shared/json.js';
import { sparkFrameError } from './errors.js';

export interface DecodedFrame {
  events: StreamEvent[];
  /** True on the last frame (`header.status == 2`). */
  last: boolean;
}

export function decodeFrame(text: string, provider: string): DecodedFrame {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    throw new SluiceError('upstream_protocol_error', { provider, message: `Provider "${provider}" (Spark) sent a frame that is not JSON.` });
  }
  const header = objectAt(frame, 'header');
  if (!header) throw new SluiceError('upstream_protocol_error', { provider, message: `Provider "${provider}" (Spark) sent a frame without a header.` });
  const code = numberAt(header, 'code') ?? 0;
  if (code !== 0) throw sparkFrameError(code, stringAt(header, 'message') ?? 'no message', stringAt(header, 'sid'), provider);
  const payload = objectAt(frame, 'payload');
  const events: StreamEvent[] = [];
  const texts = objectAt(payload, 'choices')?.['text'];
  if (Array.isArray(texts)) {
    for (const item of texts) {
      const content = isObject(item) ? stringAt(item, 'content') : undefined;
      if (content) events.push({ type: 'text-delta', text: content });
    }
  }
  const last = numberAt(header, 'status') === 2;
  if (last) {
    const usage = objectAt(objectAt(payload, 'usage'), 'text');
    if (usage) {
      const promptTokens = numberAt(usage, 'prompt_tokens') ?? 0;
      const completionTokens = numberAt(usage, 'completion_tokens') ?? 0;
      events.push({ type: 'usage', usage: { promptTokens, completionTokens, totalTokens: numberAt(usage, 'total_tokens') ?? promptTokens + completionTokens, estimated: false } });
    }
    events.push({ type: 'end', finishReason: 'stop' });
  }
  return { events, last };
}
