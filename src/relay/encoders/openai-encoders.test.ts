// The OpenAI encoders: `data:` lines only (the official SDKs mishandle event, id and retry lines),
// role first, finish, usage only when asked, [DONE] last, errors as OpenAI error objects; and
// tool-call deltas merged by index in the JSON answer.
import { APIError } from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { Stream } from 'openai/streaming';
import { describe, expect, it } from 'vitest';
import type { StreamEvent } from '../../contract/stream-event.js';
import { createOpenAiChunkEncoder } from './openai-chunks.js';
import { aggregateCompletion } from './openai-completion.js';

const identity = { id: 'chatcmpl-1', created: 1_732_000_000, model: 'alias' };
const start: StreamEvent = { type: 'start', upstreamModel: 'gpt-4o-mini-2024-07-18' };
const text = (value: string): StreamEvent => ({ type: 'text-delta', text: value });
const providerUsage: StreamEvent = { type: 'usage', usage: { promptTokens: 1, completionTokens: 2, totalTokens: 3, estimated: false } };

const events: StreamEvent[] = [
  start,
  text('Hi "there"\n'),
  { type: 'tool-call-delta', index: 0, id: 'call_1', name: 'f', argumentsDelta: '{"a"' },
  { type: 'tool-call-delta', index: 0, argumentsDelta: ':1}' },
  providerUsage,
  { type: 'end', finishReason: 'tool_calls' },
];

function encodeAll(includeUsage: boolean, input: readonly StreamEvent[] = events): string {
  const encode = createOpenAiChunkEncoder({ ...identity, includeUsage });
  return input.map(encode).join('');
}

/** The `data:` payloads of the written events, in order. */
function payloads(written: string): string[] {
  expect(written.endsWith('\n\n')).toBe(true);
  return written
    .slice(0, -2)
    .split('\n\n')
    .map((block) => {
      expect(block.startsWith('data: ')).toBe(true);
      expect(block).not.toContain('\n');
      return block.slice('data: '.length);
    });
}

interface WrittenChunk {
  id: string;
  object: string;
  created: number;
  model: string;
  choices: { index: number; delta: Record<string, unknown>; logprobs: null; finish_reason: string | null }[];
  usage?: unknown;
}

const chunksOf = (written: string) => payloads(written).filter((payload) => payload !== '[DONE]').map((payload) => JSON.parse(payload) as WrittenChunk);

describe('OpenAI chunk encoder', () => {
  it('writes data lines only: no event, id or retry line, even for text that looks like one', () => {
    const hostile = [start, text('a\nevent: x\r\nid: 1\rretry: 5\n\ndata: [DONE]\n\n'), { type: 'error', error: { code: 'upstream_error', message: 'x\nevent: y', retryable: true } }] satisfies StreamEvent[];
    for (const written of [encodeAll(true), encodeAll(false), encodeAll(false, hostile)]) {
      const lines = written.split(/\r\n|\r|\n/);
      expect(lines.filter((line) => /^(event|id|retry):/.test(line))).toEqual([]);
      expect(lines.every((line) => line === '' || line.startsWith('data: '))).toBe(true);
    }
  });

  it('sends the role first and once, then content, tool calls, the finish chunk, usage, and [DONE] last', () => {
    const written = encodeAll(true);
    const chunks = chunksOf(written);
    expect(chunks.map((chunk) => chunk.choices[0]?.delta ?? 'usage')).toEqual([
      { role: 'assistant', content: '' },
      { content: 'Hi "there"\n' },
      { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a"' } }] },
      { tool_calls: [{ index: 0, function: { arguments: ':1}' } }] },
      {},
      'usage',
    ]);
    expect(chunks.map((chunk) => chunk.choices[0]?.finish_reason)).toEqual([null, null, null, null, 'tool_calls', undefined]);
    expect(chunks.at(-1)).toEqual({ ...identity, object: 'chat.completion.chunk', system_fingerprint: null, choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } });
    // With include_usage, every other chunk says usage: null, as OpenAI's do.
    expect(chunks.slice(0, -1).map((chunk) => chunk.usage)).toEqual([null, null, null, null, null]);
    expect(chunks.every((chunk) => chunk.id === identity.id && chunk.model === 'alias' && chunk.object === 'chat.completion.chunk')).toBe(true);
    expect(payloads(written).filter((payload) => payload === '[DONE]')).toHaveLength(1);
    expect(written.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('sends the role chunk even when the first event is content', () => {
    const chunks = chunksOf(encodeAll(false, [text('a'), text('b'), { type: 'end', finishReason: 'stop' }]));
    expect(chunks.map((chunk) => chunk.choices[0]?.delta)).toEqual([{ role: 'assistant', content: '' }, { content: 'a' }, { content: 'b' }, {}]);
  });

  it('has no usage chunk and no usage key when the client did not ask, even if the provider gave usage', () => {
    const written = encodeAll(false);
    expect(written).not.toContain('usage');
    expect(chunksOf(written)).toHaveLength(5);
  });

  it('writes an error as an OpenAI error object, with param, and no [DONE]', () => {
    const written = encodeAll(false, [start, text('a'), { type: 'error', error: { code: 'invalid_request', message: 'messages[0].role: bad', retryable: false, param: 'messages[0].role' } }]);
    expect(written).not.toContain('[DONE]');
    expect(JSON.parse(payloads(written).at(-1) ?? '')).toEqual({ error: { message: 'messages[0].role: bad', type: 'invalid_request_error', param: 'messages[0].role', code: 'invalid_request' } });
    const timeout = encodeAll(false, [{ type: 'error', error: { code: 'upstream_idle_timeout', message: 'stalled', retryable: true } }]);
    expect(JSON.parse(payloads(timeout)[0] ?? '')).toEqual({ error: { message: 'stalled', type: 'timeout_error', param: null, code: 'upstream_idle_timeout' } });
  });

  it('is read by the official openai SDK as chunks, and an error event as an APIError', async () => {
    const read = async (written: string) => {
      const chunks: ChatCompletionChunk[] = [];
      for await (const chunk of Stream.fromSSEResponse<ChatCompletionChunk>(new Response(written), new AbortController())) chunks.push(chunk);
      return chunks;
    };
    const chunks = await read(encodeAll(true));
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe('Hi "there"\n');
    expect(chunks.at(-1)?.usage?.total_tokens).toBe(3);
    const failure = await read(encodeAll(false, [start, text('a'), { type: 'error', error: { code: 'upstream_error', message: 'boom', retryable: true } }])).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(APIError);
    expect(failure).toMatchObject({ message: 'boom', code: 'upstream_error', type: 'api_error' });
  });
});

describe('aggregateCompletion', () => {
  it('merges text and tool calls into one chat.completion', () => {
    expect(aggregateCompletion(events, identity)).toEqual({
      ...identity,
      object: 'chat.completion',
      system_fingerprint: null,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hi "there"\n', refusal: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] },
          logprobs: null,
          finish_reason: 'tool_calls',
        },
      ],
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
    });
  });

  it('merges interleaved tool-call deltas by index and orders the calls by index', () => {
    const completion = aggregateCompletion(
      [
        { type: 'tool-call-delta', index: 1, id: 'call_b', name: 'get_time' },
        { type: 'tool-call-delta', index: 0, id: 'call_a', name: 'get_weather' },
        { type: 'tool-call-delta', index: 0, argumentsDelta: '{"city":' },
        { type: 'tool-call-delta', index: 1, argumentsDelta: '{"tz":"Asia/Shanghai"}' },
        { type: 'tool-call-delta', index: 0, argumentsDelta: '"北京"}' },
        { type: 'end', finishReason: 'tool_calls' },
      ],
      identity,
    );
    expect(completion.choices[0].message).toEqual({
      role: 'assistant',
      // No text alongside tool calls is null, as OpenAI answers it.
      content: null,
      refusal: null,
      tool_calls: [
        { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"北京"}' } },
        { id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{"tz":"Asia/Shanghai"}' } },
      ],
    });
  });

  it('gives an empty string, not null, for an empty answer without tool calls, and no tool_calls key', () => {
    const message = aggregateCompletion([{ type: 'end', finishReason: 'length' }], identity).choices[0].message;
    expect(message).toEqual({ role: 'assistant', content: '', refusal: null });
  });
});
