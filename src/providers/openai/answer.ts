// How an OpenAI-format answer is read: its error statuses, and its body streamed (chunk events)
// or whole (one chat.completion). Shared by every provider that answers in OpenAI's format,
// whatever its request looks like (openai, azure).
import type { CallContext } from '../../contract/provider.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { readJsonResponse, retryAfterSeconds } from '../shared/http-client.js';
import type { UpstreamAnswer, WholeResponse } from '../shared/http-upstream.js';
import { parseErrorDetail, statusError } from './errors.js';
import { chunkStreamDecoder, decodeCompletion } from './stream.js';
import type { BodyDecoder } from '../shared/body-decoder.js';

export interface OpenAiAnswerOptions {
  provider: string;
  /** Kept out of any upstream text passed on. */
  secrets: readonly string[];
  maxEventBytes: number;
  now: () => number;
}

export interface OpenAiAnswerReader {
  /** An error status, with `{"error":…}` in the body, → SluiceError (Retry-After kept). */
  mapErrorResponse: (response: WholeResponse) => Error;
  /** A 200's body → its decoder (a stream), or its events (a body read whole). */
  decode: (response: UpstreamAnswer, context: CallContext) => BodyDecoder | Promise<StreamEvent[]>;
}

export function createOpenAiAnswerReader(options: OpenAiAnswerOptions): OpenAiAnswerReader {
  const { provider, secrets, maxEventBytes } = options;

  // Asked for a stream but answered with JSON (some servers ignore `stream`): still fine.
  async function decodeWholeAnswer(response: UpstreamAnswer): Promise<StreamEvent[]> {
    const { json, text } = await readJsonResponse(response.body, maxEventBytes, provider);
    if (typeof json === 'object' && json !== null && 'error' in json) throw statusError({ status: 502, detail: parseErrorDetail(text), provider, secrets });
    return decodeCompletion(json, { provider, secrets });
  }

  return {
    mapErrorResponse: (response) =>
      statusError({
        status: response.status,
        detail: parseErrorDetail(response.text),
        provider,
        retryAfterSeconds: retryAfterSeconds(response.headers['retry-after'], options.now()),
        secrets,
      }),
    decode(response, context) {
      const contentType = String(response.headers['content-type'] ?? '');
      if (context.mode === 'stream' && !contentType.includes('application/json')) return chunkStreamDecoder({ maxEventBytes, provider, secrets });
      return decodeWholeAnswer(response);
    },
  };
}
