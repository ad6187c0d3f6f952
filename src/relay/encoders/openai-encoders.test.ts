// The OpenAI encoders: data lines only, role first, finish, usage only when asked, [DONE] last;
// tool-call deltas aggregated by index in the JSON answer.
import { describe, expect, it } from 'vitest';
import type { StreamEvent } from '../stream-event.js';
import { createOpenAiChunkEncoder } from './openai-chunks.js';
import { aggregateCompletion } from './openai-completion.js';

const events: StreamEvent[] = [
  { type: 'start', upstreamModel: 'gpt-4o' },
  { type: 'text-delta', text: 'Hi "there"\n' },
  { type: 'tool-call-delta', index: 0, id: 'call_1', name: 'f', argumentsDelta: '{"a"' },
  { type: 'tool-call-delta', index: 0, argumentsDelta: ':1}' },
  { type: 'usage', usage: { promptTokens: 1, completionTokens: 2, totalTokens: 3, estimated: false } },
  { type: 'end', finishReason: 'tool_calls' },
];
const identity = { id: 'chatcmpl-1', created: 1, model: 'alias' };

function encodeAll(includeUsage: boolean, input: StreamEvent[] = events): string {
  const encode = createOpenAiChunkEncoder({ ...identity, includeUsage });
  return input.map(encode).join('');
}

describe('OpenAI chunk encoder', () => {
  it('writes data lines only, ending with [DONE]', () => {
    const text = encodeAll(true);
    for (const line of text.split('\n')) expect(line === '' || line.startsWith('data: ')).toBe(true);
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('sends role first, then content, tool calls, finish and usage', () => {
    const chunks = encodeAll(true)
      .split('\n\n')
      .filter((block) => block.startsWith('data: {'))
      .map((block) => JSON.parse(block.slice(6)) as { model: string; choices: { delta: Record<string, unknown>; finish_reason: string | null }[]; usage: unknown });
    expect(chunks.map((chunk) => chunk.model)).toEqual(Array(chunks.length).fill('alias'));
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks[1]?.choices[0]?.delta).toEqual({ content: 'Hi "there"\n' });
    expect(chunks[2]?.choices[0]?.delta).toEqual({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a"' } }] });
    expect(chunks[3]?.choices[0]?.delta).toEqual({ tool_calls: [{ index: 0, function: { arguments: ':1}' } }] });
    expect(chunks[4]?.choices[0]).toMatchObject({ delta: {}, finish_reason: 'tool_calls' });
    expect(chunks[5]).toMatchObject({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } });
    expect(chunks.slice(0, 5).every((chunk) => chunk.usage === null)).toBe(true);
  });

  it('has no usage key and no usage chunk when the client did not ask', () => {
    const text = encodeAll(false);
    expect(text).not.toContain('usage');
  });

  it('writes an error as an OpenAI error object and no [DONE]', () => {
    const text = encodeAll(false, [{ type: 'text-delta', text: 'a' }, { type: 'error', error: { code: 'upstream_idle_timeout', message: 'stalled', retryable: true } }]);
    expect(text).not.toContain('[DONE]');
    const last = text.trim().split('\n\n').at(-1) ?? '';
    expect(JSON.parse(last.slice(6))).toEqual({ error: { message: 'stalled', type: 'timeout_error', param: null, code: 'upstream_idle_timeout' } });
  });
});

describe('aggregateCompletion', () => {
  it('merges text and tool calls into one chat.completion', () => {
    const completion = aggregateCompletion(events, identity);
    expect(completion).toMatchObject({ object: 'chat.completion', model: 'alias', usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } });
    expect(completion.choices[0]).toMatchObject({
      finish_reason: 'tool_calls',
      message: { role: 'assistant', content: 'Hi "there"\n', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] },
    });
  });
});
