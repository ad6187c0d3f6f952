// A bad chat completions request gets a 400 that names the field, in `param` and in the message
// (`messages[0].role: …`), so the caller can fix it without reading the gateway's source.
import { describe, expect, it } from 'vitest';
import { SluiceError } from '../../errors/sluice-error.js';
import { parseChatCompletionRequest } from './chat-completions-schema.js';

const messages = [{ role: 'user', content: 'hi' }];

/** The error a body gets, as the client will see its fields. */
function refusal(body: unknown): { code: string; status: number; param: string | undefined; message: string } {
  try {
    parseChatCompletionRequest(body);
  } catch (error) {
    if (!(error instanceof SluiceError)) throw error;
    return { code: error.code, status: error.status, param: error.param, message: error.message };
  }
  throw new Error(`accepted ${JSON.stringify(body)}`);
}

describe('parseChatCompletionRequest', () => {
  it.each([
    ['an array', []],
    ['null', null],
    ['a string', 'hi'],
    ['a number', 5],
  ])('refuses %s as the body, with no param', (_name, body) => {
    expect(refusal(body)).toEqual({ code: 'invalid_request', status: 400, param: undefined, message: 'The request body must be a JSON object.' });
  });

  it('says a missing model is required', () => {
    expect(refusal({ messages })).toMatchObject({ code: 'invalid_request', status: 400, param: 'model', message: 'model: is required' });
    expect(refusal({})).toMatchObject({ param: 'model', message: 'model: is required' });
  });

  it('names a model of the wrong type or an empty one, and does not call it missing', () => {
    expect(refusal({ model: 5, messages })).toMatchObject({ param: 'model', message: expect.stringMatching(/^model: .*expected string/) as string });
    expect(refusal({ model: '', messages }).param).toBe('model');
    expect(refusal({ model: '', messages }).message).not.toContain('required');
  });

  it('names the message and field: messages[0].role, messages[1].content', () => {
    expect(refusal({ model: 'm', messages: [{ role: 'robot', content: 'x' }] })).toMatchObject({ param: 'messages[0].role', message: expect.stringMatching(/^messages\[0\]\.role: .*"user"/) as string });
    expect(refusal({ model: 'm', messages: [...messages, { role: 'user' }] })).toMatchObject({ param: 'messages[1].content', message: 'messages[1].content: is required' });
  });

  it('refuses an empty or missing message list', () => {
    expect(refusal({ model: 'm', messages: [] })).toMatchObject({ param: 'messages', message: 'messages: must contain at least one message' });
    expect(refusal({ model: 'm' })).toMatchObject({ param: 'messages', message: 'messages: is required' });
    expect(refusal({ model: 'm', messages: 'hi' }).param).toBe('messages');
  });

  it('refuses n other than 1, and accepts n: 1 or null', () => {
    expect(refusal({ model: 'm', messages, n: 2 })).toMatchObject({ param: 'n', message: 'n: only n = 1 is supported' });
    expect(parseChatCompletionRequest({ model: 'm', messages, n: 1 }).n).toBe(1);
    expect(parseChatCompletionRequest({ model: 'm', messages, n: null }).n).toBeNull();
  });

  it('names nested fields with dots and sampling fields out of range', () => {
    expect(refusal({ model: 'm', messages, stream_options: { include_usage: 'yes' } }).param).toBe('stream_options.include_usage');
    expect(refusal({ model: 'm', messages, temperature: 3 })).toMatchObject({ param: 'temperature', message: expect.stringMatching(/^temperature: /) as string });
    expect(refusal({ model: 'm', messages, max_tokens: 0 }).param).toBe('max_tokens');
    expect(refusal({ model: 'm', messages, stream: 'yes' }).param).toBe('stream');
  });

  it('accepts an assistant message with tool calls and no content, and passes unknown fields through', () => {
    const request = parseChatCompletionRequest({
      model: 'm',
      messages: [...messages, { role: 'assistant', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'call_1', content: '42' }],
      stream: true,
      stream_options: { include_usage: true },
      reasoning_effort: 'low',
    });
    expect(request).toMatchObject({ model: 'm', stream: true, stream_options: { include_usage: true }, reasoning_effort: 'low' });
    expect(request.messages).toHaveLength(3);
  });
});
