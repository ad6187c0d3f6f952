// The Responses API encoder: the recorded sequence byte for byte, what the official SDK assembles
// from it, replay from any sequence number giving exactly the rest, `event:`/`data:` framing only,
// and how an answer ends (completed, incomplete, failed, cancelled).
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import type { ResponseStreamEvent } from 'openai/resources/responses/responses';
import { describe, expect, it } from 'vitest';
import type { StreamEvent } from '../../contract/stream-event.js';
import { createResponsesEncoder, createResponsesSseEncoder, responseFromLog, type ResponsesStreamEvent } from './responses-events.js';
import type { ResponseIdentity } from './responses-object.js';

const fixtureIdentity: ResponseIdentity = {
  id: 'resp_fixtureGen01',
  createdAt: 1_732_000_000,
  model: 'gpt-test',
  background: false,
  request: {
    instructions: 'Answer briefly.',
    max_output_tokens: null,
    metadata: { ticket: 'T-1' },
    parallel_tool_calls: true,
    previous_response_id: null,
    store: true,
    temperature: 0.2,
    tool_choice: 'auto',
    tools: [{ type: 'function', name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: null }],
    top_p: null,
  },
};

const fixtures = new URL('./__fixtures__/', import.meta.url);
const recordedLog = readFileSync(new URL('responses-text-then-tool-call.events.jsonl', fixtures), 'utf8')
  .split('\n')
  .filter((line) => line !== '')
  .map((line) => JSON.parse(line) as StreamEvent);
const recordedSse = readFileSync(new URL('responses-text-then-tool-call.sse.txt', fixtures), 'utf8');

const identity: ResponseIdentity = { ...fixtureIdentity, id: 'resp_unit', request: { ...fixtureIdentity.request, tools: [], instructions: null, metadata: {} } };
const start: StreamEvent = { type: 'start', upstreamModel: 'gpt-4o-mini' };
const text = (value: string): StreamEvent => ({ type: 'text-delta', text: value });
const usage: StreamEvent = { type: 'usage', usage: { promptTokens: 5, completionTokens: 7, totalTokens: 12, estimated: false } };
const end = (finishReason: 'stop' | 'length' | 'tool_calls' | 'content_filter' = 'stop'): StreamEvent => ({ type: 'end', finishReason });

function sse(log: readonly StreamEvent[], who: ResponseIdentity = fixtureIdentity, startingAfter?: number): string {
  const encode = createResponsesSseEncoder(who, startingAfter !== undefined ? { startingAfter } : {});
  return log.map((event, seq) => encode(event, seq)).join('');
}

function encodeAll(log: readonly StreamEvent[], who: ResponseIdentity = identity): ResponsesStreamEvent[] {
  const encoder = createResponsesEncoder(who);
  return log.flatMap((event) => encoder.encode(event));
}

/** Parses SSE text into its events, checking the framing of each block on the way. */
function blocks(text: string): { event: string; data: Record<string, unknown> }[] {
  expect(text.endsWith('\n\n')).toBe(true);
  return text
    .slice(0, -2)
    .split('\n\n')
    .map((block) => {
      const lines = block.split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/^event: response\.[a-z_.]+$/);
      expect(lines[1]).toMatch(/^data: \{/);
      const data = JSON.parse(lines[1]!.slice('data: '.length)) as Record<string, unknown>;
      expect(data['type']).toBe(lines[0]!.slice('event: '.length));
      return { event: lines[0]!.slice('event: '.length), data };
    });
}

/** An OpenAI client whose every request is answered with `body` as an event stream. */
function clientAnswering(body: string): OpenAI {
  return new OpenAI({
    apiKey: 'unused',
    baseURL: 'http://fixture.invalid/v1',
    maxRetries: 0,
    fetch: async () => new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } }),
  });
}

/**
 * The text of a response's message items. `finalResponse()` of this SDK version does not fill in
 * `output_text` (openai/openai-node#1662: OpenAI does not send it, the SDK adds it only to
 * non-streamed answers), so it is read from the items, as a client of OpenAI itself must.
 */
function outputText(response: { output: readonly { type: string; content?: readonly { type: string; text?: string }[] }[] }): string {
  return response.output.flatMap((item) => (item.type === 'message' ? (item.content ?? []) : [])).map((part) => part.text ?? '').join('');
}

describe('the recorded sequence (text, then a tool call)', () => {
  it('is what the encoder writes for the recorded log, byte for byte, every time', () => {
    expect(sse(recordedLog)).toBe(recordedSse);
    expect(sse(recordedLog)).toBe(recordedSse);
  });

  it('numbers its events 0, 1, 2 … in the order the SDK expects them', () => {
    const events = blocks(recordedSse);
    expect(events.map((event) => event.data['sequence_number'])).toEqual(events.map((_, index) => index));
    expect(events.map((event) => event.event)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
  });

  it('is assembled by the official SDK into the text, the function call and the usage', async () => {
    const stream = clientAnswering(recordedSse).responses.stream({ model: 'gpt-test', input: 'Weather in Beijing?' });
    const seen: ResponseStreamEvent[] = [];
    const textDeltas: string[] = [];
    stream.on('event', (event) => seen.push(event));
    stream.on('response.output_text.delta', (event) => textDeltas.push(event.snapshot));
    const response = await stream.finalResponse();
    expect(seen).toHaveLength(15);
    expect(textDeltas).toEqual(['Let me check ', 'Let me check the weather in 北京 🙂.\nOne moment.']);
    expect(response.status).toBe('completed');
    expect(outputText(response)).toBe('Let me check the weather in 北京 🙂.\nOne moment.');
    const call = response.output[1];
    expect(call).toMatchObject({ type: 'function_call', call_id: 'call_Wx4kQ9', name: 'get_weather', arguments: '{"city":"北京"}', status: 'completed' });
    expect(response.usage).toEqual({ input_tokens: 31, input_tokens_details: { cached_tokens: 0 }, output_tokens: 22, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 53 });
    expect(response).toMatchObject({ id: 'resp_fixtureGen01', model: 'gpt-test', instructions: 'Answer briefly.', metadata: { ticket: 'T-1' }, temperature: 0.2 });
  });

  it('completes with the same object responseFromLog builds (the non-streamed answer)', () => {
    const completed = blocks(recordedSse).at(-1)?.data['response'];
    expect(completed).toEqual(responseFromLog(fixtureIdentity, recordedLog));
  });
});

describe('resuming after a sequence number', () => {
  it('gives exactly the events after it, for every point of the sequence', () => {
    const all = blocks(recordedSse);
    for (let after = -1; after < all.length; after++) {
      const rest = sse(recordedLog, fixtureIdentity, after);
      expect(rest === '' ? [] : blocks(rest)).toEqual(all.slice(after + 1));
    }
  });

  it('is assembled by the SDK into the same response when it skips what it had (responses.stream with starting_after)', async () => {
    // The SDK asks for the whole stream again and drops what it already had itself.
    const client = clientAnswering(recordedSse);
    const stream = client.responses.stream({ response_id: 'resp_fixtureGen01', starting_after: 9 });
    const seen: number[] = [];
    stream.on('event', (event) => seen.push(event.sequence_number));
    const response = await stream.finalResponse();
    expect(seen).toEqual([10, 11, 12, 13, 14]);
    expect(outputText(response)).toBe('Let me check the weather in 北京 🙂.\nOne moment.');
  });
});

describe('framing', () => {
  it('keeps text that looks like SSE inside one data line, and never writes id or retry lines', () => {
    const hostile = 'a\nevent: x\r\nid: 1\rretry: 5\n\ndata: [DONE]\n\n';
    const written = sse([start, text(hostile), usage, end()], identity);
    expect(written.split(/\r\n|\r|\n/).filter((line) => /^(id|retry):/.test(line))).toEqual([]);
    const deltas = blocks(written).filter((block) => block.event === 'response.output_text.delta');
    expect(deltas.map((block) => block.data['delta'])).toEqual([hostile]);
  });
});

describe('how a response ends', () => {
  it('text only: one message item opened and closed around the deltas, then completed with usage', () => {
    const events = encodeAll([start, text(''), text('Hel'), text('lo'), usage, end()]);
    expect(events.map((event) => event.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const completed = events.at(-1);
    expect(completed?.type === 'response.completed' && completed.response).toMatchObject({
      status: 'completed',
      error: null,
      incomplete_details: null,
      output: [{ id: 'msg_unit_0', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Hello', annotations: [] }] }],
      usage: { input_tokens: 5, output_tokens: 7, total_tokens: 12 },
    });
  });

  it('cut by max tokens or a content filter: response.incomplete with the reason', () => {
    for (const [finishReason, reason] of [['length', 'max_output_tokens'], ['content_filter', 'content_filter']] as const) {
      const last = encodeAll([start, text('Hi'), usage, end(finishReason)]).at(-1);
      expect(last?.type).toBe('response.incomplete');
      expect(last?.type === 'response.incomplete' && last.response).toMatchObject({ status: 'incomplete', incomplete_details: { reason } });
    }
  });

  it('failing mid-answer: response.failed with the error, the cut item incomplete and no done events for it', () => {
    const events = encodeAll([start, text('Hi'), usage, { type: 'error', error: { code: 'upstream_stream_interrupted', message: 'The stream ended early.', retryable: true } }]);
    expect(events.map((event) => event.type)).toEqual(['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added', 'response.output_text.delta', 'response.failed']);
    const failed = events.at(-1);
    expect(failed?.type === 'response.failed' && failed.response).toMatchObject({
      status: 'failed',
      error: { code: 'upstream_stream_interrupted', message: 'The stream ended early.' },
      output: [{ status: 'incomplete', content: [{ text: 'Hi' }] }],
      usage: { total_tokens: 12 },
    });
  });

  it('failing mid-answer, as the SDK surfaces it: a response.failed event to look for, no throw', async () => {
    const failedLog: StreamEvent[] = [start, text('Hi'), usage, { type: 'error', error: { code: 'upstream_idle_timeout', message: 'The provider went quiet.', retryable: true } }];
    const stream = clientAnswering(sse(failedLog, identity)).responses.stream({ model: 'gpt-test', input: 'Hi' });
    const failures: unknown[] = [];
    stream.on('response.failed', (event) => failures.push(event.response.error));
    const final = await stream.finalResponse();
    expect(failures).toEqual([{ code: 'upstream_idle_timeout', message: 'The provider went quiet.' }]);
    // finalResponse() only takes the object of response.completed: after a failure it is the
    // snapshot the SDK assembled, still in progress.
    expect(final.status).toBe('in_progress');
    expect(outputText(final)).toBe('Hi');
  });

  it('cancelled: response.failed whose response says cancelled', () => {
    const failed = encodeAll([start, text('Hi'), usage, { type: 'error', error: { code: 'cancelled', message: 'The client went away.', retryable: false } }]).at(-1);
    expect(failed?.type === 'response.failed' && failed.response.status).toBe('cancelled');
  });

  it('failing before anything: still created and in_progress first, then failed', () => {
    const events = encodeAll([usage, { type: 'error', error: { code: 'upstream_error', message: 'boom', retryable: true } }]);
    expect(events.map((event) => [event.type, event.sequence_number])).toEqual([
      ['response.created', 0],
      ['response.in_progress', 1],
      ['response.failed', 2],
    ]);
  });

  it('nothing more after the terminal event', () => {
    const encoder = createResponsesEncoder(identity);
    for (const event of [start, usage, end()]) encoder.encode(event);
    expect(encoder.encode(text('late'))).toEqual([]);
  });
});

describe('tool calls', () => {
  it('two interleaved calls: one item each, ids from the provider or made up deterministically, done in output order', () => {
    const log: StreamEvent[] = [
      start,
      { type: 'tool-call-delta', index: 0, id: 'call_a', name: 'first', argumentsDelta: '{"x"' },
      { type: 'tool-call-delta', index: 1, name: 'second', argumentsDelta: '{}' },
      { type: 'tool-call-delta', index: 0, argumentsDelta: ':1}' },
      usage,
      end('tool_calls'),
    ];
    const events = encodeAll(log);
    expect(events.map((event) => event.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const response = responseFromLog(identity, log);
    expect(response.output).toEqual([
      { id: 'fc_unit_0', type: 'function_call', status: 'completed', call_id: 'call_a', name: 'first', arguments: '{"x":1}' },
      { id: 'fc_unit_1', type: 'function_call', status: 'completed', call_id: 'call_unit_1', name: 'second', arguments: '{}' },
    ]);
    expect(encodeAll(log)).toEqual(events);
  });

  it('text after a call opens a new message item after it', () => {
    const response = responseFromLog(identity, [start, text('A'), { type: 'tool-call-delta', index: 0, id: 'c', name: 'f', argumentsDelta: '{}' }, text('B'), usage, end()]);
    expect(response.output.map((item) => [item.type, item.id])).toEqual([
      ['message', 'msg_unit_0'],
      ['function_call', 'fc_unit_1'],
      ['message', 'msg_unit_2'],
    ]);
  });
});

describe('snapshots (GET of a response still running)', () => {
  it('queued for a background response with an empty log, in progress with the text so far once it runs', () => {
    const background = { ...identity, background: true };
    expect(responseFromLog(background, []).status).toBe('queued');
    expect(responseFromLog(identity, []).status).toBe('in_progress');
    const running = responseFromLog(background, [start, text('Hal')]);
    expect(running).toMatchObject({ status: 'in_progress', usage: null, output: [{ status: 'in_progress', content: [{ text: 'Hal' }] }] });
  });

  it('a background response is created as queued, then in progress', () => {
    const events = encodeAll([start], { ...identity, background: true });
    expect(events.map((event) => event.type === 'response.created' || event.type === 'response.in_progress' ? event.response.status : undefined)).toEqual(['queued', 'in_progress']);
  });

  it('events carry copies: later deltas do not change an item already sent', () => {
    const encoder = createResponsesEncoder(identity);
    const [, , added] = encoder.encode(text('a'));
    encoder.encode(text('b'));
    expect(added?.type === 'response.output_item.added' && added.item).toMatchObject({ status: 'in_progress', content: [] });
  });
});
