// Encodes StreamEvents as OpenAI chat.completion.chunk SSE: `data:` lines only (no event, id or
// retry lines, which the official SDKs mishandle), the role in the first chunk, the finish chunk,
// the usage chunk only when the client asked for it, then `data: [DONE]`.
import { flat } from '../../contract/flat-string.js';
import { jsonString } from '../../contract/json-string.js';
import { formatSseEvent } from '../../sse/format.js';
import { openAiErrorBody } from './openai-error-body.js';
import type { StreamEvent, Usage } from '../../contract/stream-event.js';

export interface ChunkEncoderOptions {
  id: string;
  created: number;
  /** The model name the client asked for (an alias stays an alias). */
  model: string;
  includeUsage: boolean;
}

/** Formats one event of the log for the wire; `seq` is its position (ids of the native API). */
export type EventEncoder = (event: StreamEvent, seq: number) => string;

/** How `deltaHead` ends: the opening of the one choice, up to its delta. */
const choicesOpening = '{"index":0,"delta":';

export function createOpenAiChunkEncoder(options: ChunkEncoderOptions): EventEncoder {
  // Everything before the delta is the same in every chunk: built once, flat, as it lives as long
  // as the stream (decision 0032). Only what the encoder needs stays in its closure: not the
  // options, nor a second copy of the head (decision 0034).
  const includeUsage = options.includeUsage;
  const deltaHead = flat(`data: {"id":${JSON.stringify(options.id)},"object":"chat.completion.chunk","created":${options.created.toString()},"model":${JSON.stringify(options.model)},"system_fingerprint":null,"choices":[{"index":0,"delta":`);
  const tail = includeUsage ? '],"usage":null}' : ']}';
  let roleSent = false;
  let usage: Usage | undefined;

  const chunk = (delta: string, finishReason: string | null = null): string =>
    `${deltaHead}${delta},"logprobs":null,"finish_reason":${finishReason === null ? 'null' : JSON.stringify(finishReason)}}${tail}\n\n`;
  // A text chunk, the commonest by far, is its text between two strings built once (decision 0026).
  const textHead = flat(`${deltaHead}{"content":`);
  const textTail = flat(`},"logprobs":null,"finish_reason":null}${tail}\n\n`);
  const role = (): string => {
    if (roleSent) return '';
    roleSent = true;
    return chunk('{"role":"assistant","content":""}');
  };

  return (event) => {
    switch (event.type) {
      case 'start':
        return role();
      case 'text-delta': {
        const text = textHead + jsonString(event.text) + textTail;
        return roleSent ? text : role() + text;
      }
      case 'tool-call-delta': {
        const call: Record<string, unknown> = { index: event.index };
        if (event.id !== undefined) {
          call['id'] = event.id;
          call['type'] = 'function';
        }
        const fn: Record<string, string> = {};
        if (event.name !== undefined) fn['name'] = event.name;
        fn['arguments'] = event.argumentsDelta ?? '';
        call['function'] = fn;
        return role() + chunk(JSON.stringify({ tool_calls: [call] }));
      }
      case 'usage':
        usage = event.usage;
        return '';
      case 'upstream-event':
        // OpenAI's chunks have no place for a provider's own events; their text came as deltas.
        return '';
      case 'end': {
        let text = role() + chunk('{}', event.finishReason);
        if (includeUsage && usage) {
          const usageJson = JSON.stringify({ prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens, total_tokens: usage.totalTokens });
          // The chunk's head up to its choices, which are empty in the usage chunk.
          text += `${deltaHead.slice(0, deltaHead.length - choicesOpening.length)}],"usage":${usageJson}}\n\n`;
        }
        return `${text}data: [DONE]\n\n`;
      }
      case 'error':
        return formatSseEvent({ data: JSON.stringify(openAiErrorBody(event.error)) });
    }
  };
}
