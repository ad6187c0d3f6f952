// Reads a company endpoint's SSE events: JSON objects (text at the configured path) or plain
// text. The configured end marker ends the answer; without one, the end of the stream does.
import type { EventSourceMessage } from 'eventsource-parser';
import type { ResolvedSignedHttpProvider } from './config.js';
import { SluiceError } from '../../errors/sluice-error.js';
import { isObject } from '../shared/json.js';
import { EventBatcher, SseBodyDecoder, type BodyDecoder, type SseEventDecoder } from '../shared/body-decoder.js';

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
 * A company endpoint's SSE body, decoded as its reads arrive (decision 0034). `userId`, when known,
 * is added to every JSON object relayed as an `upstream-event` (under provider.userIdField), so the
 * company's front end sees whose event it is.
 */
export function signedEventsDecoder(provider: ResolvedSignedHttpProvider, userId?: string): BodyDecoder {
  return new SseBodyDecoder({ maxEventBytes: provider.maxEventBytes, provider: provider.id }, new SignedEventsDecoder(provider, userId));
}

class SignedEventsDecoder extends EventBatcher implements SseEventDecoder {
  done = false;
  readonly #provider: ResolvedSignedHttpProvider;
  readonly #userId: string | undefined;

  constructor(provider: ResolvedSignedHttpProvider, userId: string | undefined) {
    super();
    this.#provider = provider;
    this.#userId = userId;
  }

  message(message: EventSourceMessage): void {
    if (this.done) return;
    const provider = this.#provider;
    let json: unknown;
    try {
      json = JSON.parse(message.data);
    } catch {
      json = undefined;
    }
    if (!isObject(json)) {
      // Plain-text events are the text itself.
      if (message.data === '[DONE]') this.done = true;
      else if (message.data !== '') this.pending.push({ type: 'text-delta', text: message.data });
      return;
    }
    if (message.event === 'error') {
      throw new SluiceError('upstream_error', { provider: provider.id, message: `Provider "${provider.id}" sent an error event: ${JSON.stringify(json).slice(0, 300)}` });
    }
    const text = provider.textPath ? valueAt(json, provider.textPath) : undefined;
    const userId = this.#userId;
    this.pending.push({ type: 'upstream-event', ...(message.event !== undefined ? { event: message.event } : {}), data: userId !== undefined ? { ...json, [provider.userIdField]: userId } : json });
    if (typeof text === 'string' && text !== '') this.pending.push({ type: 'text-delta', text });
    if (provider.endWhen && valueAt(json, provider.endWhen.path) === provider.endWhen.equals) this.done = true;
  }

  /** Without an end marker configured, the end of the stream ends the answer. */
  finish(): void {
    const provider = this.#provider;
    if (provider.endWhen && !this.done) {
      throw new SluiceError('upstream_stream_interrupted', { provider: provider.id, message: `Provider "${provider.id}" closed the stream before its end marker (${provider.endWhen.path}).` });
    }
    this.pending.push({ type: 'end', finishReason: 'stop' });
  }
}
