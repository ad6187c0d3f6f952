// A bad chat completions request gets a 400 that names the field, in `param` and in the message
// (`messages[0].role: …`), so the caller can fix it without reading the gateway's source.
import { describe, expect, it } from 'vitest';
import { SluiceError } from '../../errors/sluice-error.js';
import { chatCompletionRequestSchema, parseChatCompletionRequest } from './chat-completions-schema.js';
import { seededRandom } from '../../../test/support/seeded-random.js';

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

// parseChatCompletionRequest checks common bodies by hand and leaves the rest to the schema
// (docs/decisions/0025-per-request-path.md): whatever the body, it must answer exactly as the
// schema alone does, the same value with its fields in the same order, or the same error.
describe('parseChatCompletionRequest answers as the schema alone', () => {
  /** The schema's own answer: its value as JSON text (field order included), or its error message. */
  function bySchema(body: unknown): string {
    const result = chatCompletionRequestSchema.safeParse(body);
    return result.success ? JSON.stringify(result.data) : 'refused';
  }
  function byRoute(body: unknown): string {
    try {
      return JSON.stringify(parseChatCompletionRequest(body));
    } catch (error) {
      if (error instanceof SluiceError) return 'refused';
      throw error;
    }
  }

  const choices: Record<string, readonly unknown[]> = {
    model: ['gpt-4o', '', 5, null],
    messages: [
      messages,
      [],
      [{ role: 'user', content: 'x', name: 'ann' }, { content: 'y', role: 'assistant' }],
      [{ role: 'robot', content: 'x' }],
      [{ role: 'user' }],
      [{ role: 'assistant' }],
      [{ role: 'user', content: null }],
      [{ role: 'user', content: [{ type: 'text', text: 'x' }] }],
      [{ role: 'user', content: 'x', name: 5 }],
      [{ role: 'user', content: 'x', extra: true }],
      [{ role: 'tool', content: 'x', tool_call_id: 'c' }],
      [null],
      [['user', 'x']],
      'hi',
    ],
    stream: [true, false, null, 'yes'],
    stream_options: [{ include_usage: true }, { include_usage: 'yes' }, {}, { include_usage: false, more: 1 }, null, [], 'x'],
    temperature: [0, 2, 1.5, 2.01, -0.1, '1', null],
    top_p: [0, 1, 0.5, 1.1, null],
    max_tokens: [1, 100, 0, -3, 1.5, 2 ** 53, null, '5'],
    max_completion_tokens: [64, 0, null],
    n: [1, 2, null, '1'],
    seed: [0, -7, 1.5, 2 ** 60, null],
    presence_penalty: [-2, 2, 2.5, null],
    frequency_penalty: [0.5, -2.5, null],
    user: ['ann', 'x'.repeat(256), 'x'.repeat(257), 5, null],
    reasoning_effort: ['low', 3],
    tools: [[{ type: 'function' }], null],
  };
  const names = Object.keys(choices);

  it('on 5000 bodies of common and uncommon fields, in any order', () => {
    const next = seededRandom(15);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)] as T;
    for (let index = 0; index < 5000; index++) {
      // Mostly valid bodies (model and messages usually right), so the hand check is exercised.
      const body: Record<string, unknown> = {};
      const fields = names.filter((name) => (name === 'model' || name === 'messages' ? next() < 0.97 : next() < 0.3)).sort(() => next() - 0.5);
      for (const name of fields) body[name] = next() < 0.7 && (name === 'model' || name === 'messages') ? choices[name]?.[0] : pick(choices[name] ?? []);
      expect(byRoute(body), JSON.stringify(body)).toBe(bySchema(body));
    }
  });
});
