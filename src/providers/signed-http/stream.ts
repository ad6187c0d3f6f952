// Reads a company endpoint's SSE events: JSON objects (text at the configured path) or plain
// text. The configured end marker ends the answer; without one, the end of the stream does.
import type { EventSourceMessage } from 'eventsource-parser';
import type { ResolvedSignedHttpProvider } from './config.js';
import { SluiceError } from '../../errors/sluice-error.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { isObject } from '../shared/json.js';

/** Follows a dotted path (`data.content`, `choices.0.delta.content`) through objects and arrays. */
export function valueAt(value: unknown, path: string): unknown {
  let current = value;
  for (const key of path.split('.')) {
    if (Array.isArray(current)) current = current[Number(key)];
    else if (isObject(current)) current = current[key];
    else return undefined;
  }
  return current;
}

/**
 * `userId`, when known, is added to every JSON object relayed as an `upstream-event` (under
 * provider.userIdField), so the company's front end sees whose event it is.
 */
export async function* decodeEvents(batches: AsyncIterable<EventSourceMessage[]>, provider: ResolvedSignedHttpProvider, userId?: string): AsyncGenerator<StreamEvent[]> {
  let ended = false;
  for await (const batch of batches) {
    const events: StreamEvent[] = [];
    for (const message of batch) {
      let json: unknown;
      try {
        json = JSON.parse(message.data);
      } catch {
        json = undefined;
      }
      if (!isObject(json)) {
        // Plain-text events are the text itself.
        if (message.data !== '' && message.data !== '[DONE]') events.push({ type: 'text-delta', text: message.data });
        if (message.data === '[DONE]') ended = true;
      } else {
        if (message.event === 'error') {
          throw new SluiceError('upstream_error', { provider: provider.id, message: `Provider "${provider.id}" sent an error event: ${JSON.stringify(json).slice(0, 300)}` });
        }
        const text = provider.textPath ? valueAt(json, provider.textPath) : undefined;
        events.push({ type: 'upstream-event', ...(message.event !== undefined ? { event: message.event } : {}), data: userId !== undefined ? { ...json, [provider.userIdField]: userId } : json });
        if (typeof text === 'string' && text !== '') events.push({ type: 'text-delta', text });
        if (provider.endWhen && valueAt(json, provider.endWhen.path) === provider.endWhen.equals) ended = true;
      }
      if (ended) break;
    }
    if (events.length > 0) yield events;
    if (ended) break;
  }
  if (provider.endWhen && !ended) {
    throw new SluiceError('upstream_stream_interrupted', { provider: provider.id, message: `Provider "${provider.id}" closed the stream before its end marker (${provider.endWhen.path}).` });
  }
  yield [{ type: 'end', finishReason: 'stop' }];
}
