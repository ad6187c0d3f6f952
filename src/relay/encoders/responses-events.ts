// Encodes a generation's log as the Responses API's streaming events (`response.created`,
// `response.output_text.delta`, …, `response.completed`), each with its `sequence_number`, framed as
// OpenAI sends them: `event: <type>` and `data: <json>`, no `id:` or `retry:` line.
//
// The encoding is a pure function of the log: the same events in the same order always give the
// same Responses events with the same sequence numbers and the same ids. That is what lets a
// client resume a background response with `starting_after=N` on any node, from the live log or
// one stored long after: the log is encoded again from its start and what the client already has
// is skipped. Nothing here may therefore read a clock, a counter or anything else outside the
// identity and the log.
import { formatSseEvent } from '../../sse/format.js';
import type { StreamEvent, Usage } from '../../contract/stream-event.js';
import type { EventEncoder } from './openai-chunks.js';
import { buildResponse, copyItem, type FunctionCallItem, type OutputItem, type OutputMessage, type OutputText, type ResponseError, type ResponseIdentity, type ResponseObject, type ResponseState } from './responses-object.js';

interface Sequenced {
  sequence_number: number;
}

/** The events Sluice sends, typed as the official SDK's `ResponseStreamEvent` members of the same names. */
export type ResponsesStreamEvent = Sequenced &
  (
    | { type: 'response.created' | 'response.in_progress' | 'response.completed' | 'response.incomplete' | 'response.failed'; response: ResponseObject }
    | { type: 'response.output_item.added' | 'response.output_item.done'; output_index: number; item: OutputItem }
    | { type: 'response.content_part.added' | 'response.content_part.done'; item_id: string; output_index: number; content_index: number; part: OutputText }
    | { type: 'response.output_text.delta'; item_id: string; output_index: number; content_index: number; delta: string; logprobs: [] }
    | { type: 'response.output_text.done'; item_id: string; output_index: number; content_index: number; text: string; logprobs: [] }
    | { type: 'response.function_call_arguments.delta'; item_id: string; output_index: number; delta: string }
    | { type: 'response.function_call_arguments.done'; item_id: string; output_index: number; name: string; arguments: string }
  );

/** Distributes over the union, so each member keeps its own fields. */
type Unsequenced<Event> = Event extends Sequenced ? Omit<Event, 'sequence_number'> : never;

export interface ResponsesEncoder {
  /** The Responses events for the next event of the log, numbered on from the previous ones. */
  encode(event: StreamEvent): ResponsesStreamEvent[];
  /** The response as the log so far describes it (status `in_progress` until its terminal event). */
  snapshot(): ResponseObject;
}

/** A stateful encoder: feed it the log in order, from seq 0, each event once. */
export function createResponsesEncoder(identity: ResponseIdentity): ResponsesEncoder {
  // Item ids are derived from the response id and the item's place in the output: deterministic.
  const idBase = identity.id.replace(/^resp_/, '');
  const output: OutputItem[] = [];
  /** The output index of the message item receiving text, if one is open. */
  let openMessage: number | undefined;
  /** Tool call index (the provider's) → output index, for every call seen. */
  const calls = new Map<number, number>();
  const openCalls = new Set<number>();
  let sequenceNumber = 0;
  let opened = false;
  let usage: Usage | undefined;
  let state: ResponseState | undefined;

  const current = (): ResponseState => state ?? { status: opened || !identity.background ? 'in_progress' : 'queued', output, ...(usage ? { usage } : {}) };

  function emit(into: ResponsesStreamEvent[], event: Unsequenced<ResponsesStreamEvent>): void {
    // `type` first, then `sequence_number`, as OpenAI orders them.
    const { type, ...fields } = event;
    into.push({ type, sequence_number: sequenceNumber++, ...fields } as ResponsesStreamEvent);
  }

  function message(index: number): OutputMessage {
    const item = output[index];
    if (item?.type !== 'message') throw new Error(`responses encoder: output ${index.toString()} is not a message`);
    return item;
  }

  function call(index: number): FunctionCallItem {
    const item = output[index];
    if (item?.type !== 'function_call') throw new Error(`responses encoder: output ${index.toString()} is not a function call`);
    return item;
  }

  function openMessageItem(into: ResponsesStreamEvent[]): number {
    const index = output.length;
    const item: OutputMessage = { id: `msg_${idBase}_${index.toString()}`, type: 'message', status: 'in_progress', role: 'assistant', content: [] };
    output.push(item);
    emit(into, { type: 'response.output_item.added', output_index: index, item: copyItem(item) });
    const part: OutputText = { type: 'output_text', text: '', annotations: [], logprobs: [] };
    item.content.push(part);
    emit(into, { type: 'response.content_part.added', item_id: item.id, output_index: index, content_index: 0, part: { ...part } });
    openMessage = index;
    return index;
  }

  function closeMessage(into: ResponsesStreamEvent[]): void {
    if (openMessage === undefined) return;
    const index = openMessage;
    openMessage = undefined;
    const item = message(index);
    const part = item.content[0];
    if (part) {
      emit(into, { type: 'response.output_text.done', item_id: item.id, output_index: index, content_index: 0, text: part.text, logprobs: [] });
      emit(into, { type: 'response.content_part.done', item_id: item.id, output_index: index, content_index: 0, part: { ...part } });
    }
    item.status = 'completed';
    emit(into, { type: 'response.output_item.done', output_index: index, item: copyItem(item) });
  }

  function closeCalls(into: ResponsesStreamEvent[]): void {
    // In output order, whatever order the provider interleaved them in.
    for (const index of [...openCalls].sort((a, b) => a - b)) {
      const item = call(index);
      item.status = 'completed';
      emit(into, { type: 'response.function_call_arguments.done', item_id: item.id, output_index: index, name: item.name, arguments: item.arguments });
      emit(into, { type: 'response.output_item.done', output_index: index, item: copyItem(item) });
    }
    openCalls.clear();
  }

  function toolCallDelta(into: ResponsesStreamEvent[], event: Extract<StreamEvent, { type: 'tool-call-delta' }>): void {
    let index = calls.get(event.index);
    if (index === undefined) {
      closeMessage(into);
      index = output.length;
      // A provider that gives no id still gets a call_id the function's output can name.
      const item: FunctionCallItem = { id: `fc_${idBase}_${index.toString()}`, type: 'function_call', status: 'in_progress', call_id: event.id ?? `call_${idBase}_${index.toString()}`, name: event.name ?? '', arguments: '' };
      output.push(item);
      calls.set(event.index, index);
      openCalls.add(index);
      emit(into, { type: 'response.output_item.added', output_index: index, item: copyItem(item) });
    } else if (!openCalls.has(index)) {
      // Text came between two pieces of one call and closed it: its item is done and cannot grow.
      return;
    } else if (event.name !== undefined) {
      // A name in pieces (rare): the added event had the first; the done events have it whole.
      call(index).name += event.name;
    }
    if (event.argumentsDelta === undefined || event.argumentsDelta === '') return;
    const item = call(index);
    item.arguments += event.argumentsDelta;
    emit(into, { type: 'response.function_call_arguments.delta', item_id: item.id, output_index: index, delta: event.argumentsDelta });
  }

  function finish(into: ResponsesStreamEvent[], event: Extract<StreamEvent, { type: 'end' | 'error' }>): void {
    if (event.type === 'end') {
      closeMessage(into);
      closeCalls(into);
      const incompleteReason = event.finishReason === 'length' ? 'max_output_tokens' : event.finishReason === 'content_filter' ? 'content_filter' : undefined;
      state = { status: incompleteReason ? 'incomplete' : 'completed', output, ...(usage ? { usage } : {}), ...(incompleteReason ? { incompleteReason } : {}) };
      emit(into, { type: incompleteReason ? 'response.incomplete' : 'response.completed', response: buildResponse(identity, state) });
      return;
    }
    // Items cut short stay in the output as `incomplete`, without done events of their own.
    for (const item of output) if (item.status === 'in_progress') item.status = 'incomplete';
    openMessage = undefined;
    openCalls.clear();
    const error: ResponseError = { code: event.error.code, message: event.error.message };
    // The SDK's event union has no `response.cancelled`: a cancelled response ends with
    // `response.failed` too, its status telling the two apart.
    state = { status: event.error.code === 'cancelled' ? 'cancelled' : 'failed', output, ...(usage ? { usage } : {}), error };
    emit(into, { type: 'response.failed', response: buildResponse(identity, state) });
  }

  return {
    encode(event) {
      const into: ResponsesStreamEvent[] = [];
      if (state) return into;
      if (!opened) {
        // Whatever the log starts with (a failure before the answer starts with `usage`), the SDK
        // needs `response.created` first: it builds its snapshot from it.
        opened = true;
        emit(into, { type: 'response.created', response: buildResponse(identity, { status: identity.background ? 'queued' : 'in_progress', output: [] }) });
        emit(into, { type: 'response.in_progress', response: buildResponse(identity, { status: 'in_progress', output: [] }) });
      }
      switch (event.type) {
        case 'text-delta': {
          // An empty delta (a role-only chunk) would open a message with nothing in it.
          if (event.text === '') break;
          if (openMessage === undefined) {
            closeCalls(into);
            openMessageItem(into);
          }
          const index = openMessage ?? 0;
          const item = message(index);
          const part = item.content[0];
          if (part) part.text += event.text;
          emit(into, { type: 'response.output_text.delta', item_id: item.id, output_index: index, content_index: 0, delta: event.text, logprobs: [] });
          break;
        }
        case 'tool-call-delta':
          toolCallDelta(into, event);
          break;
        case 'usage':
          usage = event.usage;
          break;
        case 'end':
        case 'error':
          finish(into, event);
          break;
        case 'start':
        case 'upstream-event':
          // A provider's own events have no place in the Responses API; their text came as deltas.
          break;
      }
      return into;
    },
    snapshot: () => buildResponse(identity, current()),
  };
}

export interface ResponsesSseOptions {
  /** Leave out the events up to and including this sequence number (a resume); default none. */
  startingAfter?: number;
}

/** The encoder the follow loop takes: SSE text for each log event, read from seq 0 in order. */
export function createResponsesSseEncoder(identity: ResponseIdentity, options: ResponsesSseOptions = {}): EventEncoder {
  const encoder = createResponsesEncoder(identity);
  const after = options.startingAfter ?? -1;
  return (event) => {
    let text = '';
    for (const encoded of encoder.encode(event)) {
      if (encoded.sequence_number > after) text += formatSseEvent({ event: encoded.type, data: JSON.stringify(encoded) });
    }
    return text;
  };
}

/** The response a whole log (or the part of it that exists) describes. */
export function responseFromLog(identity: ResponseIdentity, events: readonly StreamEvent[]): ResponseObject {
  const encoder = createResponsesEncoder(identity);
  for (const event of events) encoder.encode(event);
  return encoder.snapshot();
}
