// Responses input → chat messages: the turn structure providers need (text and the calls after it
// are one assistant turn; each output is a tool message naming its call), instructions first, and
// tools only with the fields that were given.
import { describe, expect, it } from 'vitest';
import { requestEcho, toChatMessages, toChatParams } from './responses-input.js';
import { parseCreateResponseBody } from './responses-schema.js';

const call = (callId: string, name: string) => ({ type: 'function_call' as const, call_id: callId, name, arguments: '{}' });

describe('toChatMessages', () => {
  it('puts instructions first and merges text and the function calls after it into one assistant turn', () => {
    const body = parseCreateResponseBody({
      model: 'm',
      instructions: 'Be brief.',
      input: 'placeholder',
    });
    const items = [
      ...body.input,
      { type: 'message' as const, role: 'assistant' as const, content: [{ type: 'output_text' as const, text: 'Checking.' }] },
      call('c1', 'a'),
      call('c2', 'b'),
      { type: 'function_call_output' as const, call_id: 'c1', output: '1' },
      { type: 'function_call_output' as const, call_id: 'c2', output: '2' },
      call('c3', 'a'),
    ];
    expect(toChatMessages(body.instructions, items)).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'placeholder' },
      {
        role: 'assistant',
        content: 'Checking.',
        tool_calls: [
          { id: 'c1', type: 'function', function: { name: 'a', arguments: '{}' } },
          { id: 'c2', type: 'function', function: { name: 'b', arguments: '{}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'c1', content: '1' },
      { role: 'tool', tool_call_id: 'c2', content: '2' },
      // After a tool message a call starts a new assistant turn, with no text.
      { role: 'assistant', content: null, tool_calls: [{ id: 'c3', type: 'function', function: { name: 'a', arguments: '{}' } }] },
    ]);
  });

  it('reads a function output given as input_text parts as one string', () => {
    const body = parseCreateResponseBody({ model: 'm', input: [{ type: 'function_call_output', call_id: 'c1', output: [{ type: 'input_text', text: 'a' }, { type: 'input_text', text: 'b' }] }] });
    expect(toChatMessages(null, body.input)).toEqual([{ role: 'tool', tool_call_id: 'c1', content: 'ab' }]);
  });
});

describe('toChatParams', () => {
  it('leaves tool_choice and parallel_tool_calls out without tools (OpenAI refuses them alone)', () => {
    const body = parseCreateResponseBody({ model: 'm', input: 'hi', tool_choice: 'required', parallel_tool_calls: false, max_output_tokens: 5 });
    expect(toChatParams(body, requestEcho(body).tools)).toEqual({ max_tokens: 5 });
  });

  it('sends a function tool with only the fields it was given', () => {
    const body = parseCreateResponseBody({ model: 'm', input: 'hi', tools: [{ type: 'function', name: 'f' }], tool_choice: 'auto' });
    expect(toChatParams(body, requestEcho(body).tools)).toEqual({ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: 'auto' });
    expect(requestEcho(body).tools).toEqual([{ type: 'function', name: 'f', description: null, parameters: null, strict: null }]);
  });
});
