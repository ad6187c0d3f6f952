// Encodes a generation's log as the Anthropic Messages API's streaming events (`message_start`,
// `content_block_start`, `content_block_delta`, `content_block_stop`, `message_delta`,
// `message_stop`), framed as Anthropic sends them: `event: <type>` and `data: <json>`, no `id:` or
// `retry:` line; a failure after the first byte is `event: error` with Anthropic's error body.
// The same encoder, run over a whole log, builds the one `message` object of a non-streamed
// answer, so the two can never disagree (docs/messages.md).
//
// Anthropic streams one content block at a time: a text block, or a tool_use block whose input
// arrives as `input_json_delta` pieces. A provider's tool calls are therefore blocks in the order
// they start; a piece of a call whose block was already closed (a provider interleaving two calls,
// which none of Sluice's providers does) cannot be sent and is dropped.
import { formatSseEvent } from '../../sse/format.js';
import type { FinishReason, StreamEvent, Usage } from '../../contract/stream-event.js';
import type { EventEncoder } from './openai-chunks.js';
import { anthropicErrorBody, type AnthropicErrorBody } from './messages-error-body.js';

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'refusal';

export interface MessageUsage {
  input_tokens: number;
  output_tokens: number;
}

export type ContentBlock = { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

/** The `message` object, as the official SDK's `Message` type has it. */
export interface MessageObject {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: ContentBlock[];
  stop_reason: StopReason | null;
  stop_sequence: string | null;
  usage: MessageUsage;
}

/** The events Sluice sends, typed as the SDK's `RawMessageStreamEvent` members of the same names. */
export type MessagesStreamEvent =
  | { type: 'message_start'; message: MessageObject }
  | { type: 'content_block_start'; index: number; content_block: ContentBlock }
  | { type: 'content_block_delta'; index: number; delta: { type: 'text_delta'; text: string } | { type: 'input_json_delta'; partial_json: string } }
  | { type: 'content_block_stop'; index: number }
  | { type: 'message_delta'; delta: { stop_reason: StopReason; stop_sequence: string | null }; usage: MessageUsage }
  | { type: 'message_stop' }
  | AnthropicErrorBody;

export interface MessageIdentity {
  /** `msg_…`. */
  id: string;
  /** The model name the client asked for (an alias stays an alias). */
  model: string;
  /**
   * Sluice's estimate of the prompt's tokens, for `message_start` (Anthropic counts the input
   * before answering; most providers say only at the end). `message_delta` carries the
   * provider's own count when it gives one.
   */
  estimatedInputTokens: number;
}

export interface MessagesEncoder {
  /** The Messages events for the next event of the log. */
  encode(event: StreamEvent): MessagesStreamEvent[];
  /** The message as the log so far describes it. */
  snapshot(): MessageObject;
}

/** `finish_reason` → Anthropic's `stop_reason`. */
export function stopReasonOf(finishReason: FinishReason, stopSequence: string | undefined): StopReason {
  switch (finishReason) {
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    case 'stop':
      return stopSequence !== undefined ? 'stop_sequence' : 'end_turn';
  }
}

/** A stateful encoder: feed it the log in order, from seq 0, each event once. */
export function createMessagesEncoder(identity: MessageIdentity): MessagesEncoder {
  const idBase = identity.id.replace(/^msg_/, '');
  const content: ContentBlock[] = [];
  /** Raw argument text of each tool_use block, parsed into `input` when the block closes. */
  const toolArguments = new Map<number, string>();
  /** Tool call index (the provider's) → content block index. */
  const blockOfCall = new Map<number, number>();
  let openBlock: number | undefined;
  let started = false;
  let finished = false;
  let usage: Usage | undefined;
  let stopReason: StopReason | null = null;
  let stopSequence: string | null = null;

  const currentUsage = (): MessageUsage => ({ input_tokens: usage?.promptTokens ?? identity.estimatedInputTokens, output_tokens: usage?.completionTokens ?? 0 });

  function closeBlock(into: MessagesStreamEvent[]): void {
    if (openBlock === undefined) return;
    const index = openBlock;
    openBlock = undefined;
    const block = content[index];
    if (block?.type === 'tool_use') block.input = parseInput(toolArguments.get(index) ?? '');
    into.push({ type: 'content_block_stop', index });
  }

  function openTextBlock(into: MessagesStreamEvent[]): number {
    closeBlock(into);
    const index = content.length;
    content.push({ type: 'text', text: '' });
    into.push({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
    openBlock = index;
    return index;
  }

  function toolCallDelta(into: MessagesStreamEvent[], event: Extract<StreamEvent, { type: 'tool-call-delta' }>): void {
    let index = blockOfCall.get(event.index);
    if (index === undefined) {
      closeBlock(into);
      index = content.length;
      // A provider that gives no id still gets one the tool_result can name.
      const block: ContentBlock = { type: 'tool_use', id: event.id ?? `toolu_${idBase}_${index.toString()}`, name: event.name ?? '', input: {} };
      content.push(block);
      blockOfCall.set(event.index, index);
      toolArguments.set(index, '');
      into.push({ type: 'content_block_start', index, content_block: { ...block, input: {} } });
      openBlock = index;
    } else if (openBlock !== index) {
      return;
    }
    if (event.argumentsDelta === undefined || event.argumentsDelta === '') return;
    toolArguments.set(index, (toolArguments.get(index) ?? '') + event.argumentsDelta);
    into.push({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: event.argumentsDelta } });
  }

  return {
    encode(event) {
      const into: MessagesStreamEvent[] = [];
      if (finished) return into;
      if (!started && event.type !== 'error') {
        started = true;
        into.push({ type: 'message_start', message: { id: identity.id, type: 'message', role: 'assistant', model: identity.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: identity.estimatedInputTokens, output_tokens: 0 } } });
      }
      switch (event.type) {
        case 'text-delta': {
          if (event.text === '') break;
          const index = openBlock !== undefined && content[openBlock]?.type === 'text' ? openBlock : openTextBlock(into);
          const block = content[index];
          if (block?.type === 'text') block.text += event.text;
          into.push({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: event.text } });
          break;
        }
        case 'tool-call-delta':
          toolCallDelta(into, event);
          break;
        case 'usage':
          usage = event.usage;
          break;
        case 'end':
          finished = true;
          closeBlock(into);
          stopReason = stopReasonOf(event.finishReason, event.stopSequence);
          stopSequence = event.stopSequence ?? null;
          into.push({ type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: stopSequence }, usage: currentUsage() });
          into.push({ type: 'message_stop' });
          break;
        case 'error':
          // As Anthropic does: the error event ends the stream, with no block or message stop.
          finished = true;
          into.push(anthropicErrorBody(event.error));
          break;
        case 'start':
        case 'upstream-event':
          // A provider's own events have no place in the Messages API; their text came as deltas.
          break;
      }
      return into;
    },
    snapshot: () => ({
      id: identity.id,
      type: 'message',
      role: 'assistant',
      model: identity.model,
      content: content.map((block, index) => (block.type === 'tool_use' && index === openBlock ? { ...block, input: parseInput(toolArguments.get(index) ?? '') } : { ...block })),
      stop_reason: stopReason,
      stop_sequence: stopSequence,
      usage: currentUsage(),
    }),
  };
}

/**
 * A tool call's arguments as the `input` object. Arguments that are not a JSON object (a provider
 * that cut them short) are kept whole under `_raw`, so nothing the model produced is lost.
 */
function parseInput(text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // Falls through to the raw text.
  }
  return { _raw: text };
}

/** The encoder the follow loop takes: SSE text for each log event, read from seq 0 in order. */
export function createMessagesSseEncoder(identity: MessageIdentity): EventEncoder {
  const encoder = createMessagesEncoder(identity);
  return (event) => {
    let text = '';
    for (const encoded of encoder.encode(event)) text += formatSseEvent({ event: encoded.type, data: JSON.stringify(encoded) });
    return text;
  };
}

/** The `message` a whole log describes: the body of a non-streamed answer. */
export function messageFromLog(identity: MessageIdentity, events: readonly StreamEvent[]): MessageObject {
  const encoder = createMessagesEncoder(identity);
  for (const event of events) encoder.encode(event);
  return encoder.snapshot();
}

/** The `ping` event Anthropic sends to keep a stream alive; Sluice's heartbeat on this route. */
export const messagesPing = formatSseEvent({ event: 'ping', data: '{"type":"ping"}' });
