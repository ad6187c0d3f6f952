// Recorded Messages API streams, replayed read by read (some reads end inside a character),
// decode into the right StreamEvents; errors map to the right codes without leaking keys.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SluiceError } from '../../errors/sluice-error.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { replayReads } from '../../../test/support/pushed-events.js';
import { anthropicError } from './errors.js';
import { convertMessages } from './request.js';
import { decodeMessage, messageStreamDecoder } from './stream.js';

async function* reads(name: string): AsyncGenerator<Uint8Array> {
  const lines = readFileSync(new URL(`./__fixtures__/anthropic-${name}.chunks.txt`, import.meta.url), 'utf8').split('\n').filter(Boolean);
  for (const line of lines) {
    await Promise.resolve();
    yield Buffer.from(JSON.parse(line) as string, 'latin1');
  }
}

async function replay(name: string): Promise<{ events: StreamEvent[]; error?: SluiceError }> {
  const { events, error } = await replayReads(messageStreamDecoder({ maxEventBytes: 1 << 20, provider: 'claude', secrets: [] }), reads(name));
  return error === undefined ? { events } : { events, error: error as SluiceError };
}

const textOf = (events: StreamEvent[]) => events.map((event) => (event.type === 'text-delta' ? event.text : '')).join('');

describe('recorded Anthropic streams', () => {
  it('text: characters split across reads arrive whole, usage from message_start and message_delta', async () => {
    const { events, error } = await replay('text');
    expect(error).toBeUndefined();
    expect(textOf(events)).toBe('你好，世界 🙂');
    expect(events.slice(-2)).toEqual([
      { type: 'usage', usage: { promptTokens: 25, completionTokens: 15, totalTokens: 40, estimated: false } },
      { type: 'end', finishReason: 'stop' },
    ]);
  });

  it('tool-use: input_json_delta pieces become tool-call deltas', async () => {
    const { events } = await replay('tool-use');
    expect(events.filter((event) => event.type === 'tool-call-delta')).toEqual([
      { type: 'tool-call-delta', index: 0, id: 'toolu_1', name: 'lookup' },
      { type: 'tool-call-delta', index: 0, argumentsDelta: '{"q":"北' },
      { type: 'tool-call-delta', index: 0, argumentsDelta: '京"}' },
    ]);
    expect(events.at(-1)).toEqual({ type: 'end', finishReason: 'tool_calls' });
  });

  it('refusal maps to content_filter', async () => {
    expect((await replay('refusal')).events.at(-1)).toEqual({ type: 'end', finishReason: 'content_filter' });
  });

  it('error-mid-stream: the text first, then upstream_unavailable', async () => {
    const { events, error } = await replay('error-mid-stream');
    expect(textOf(events)).toBe('partial');
    expect(error?.code).toBe('upstream_unavailable');
  });

  it('truncated: no message_stop is an interrupted stream, not a success', async () => {
    const { events, error } = await replay('truncated');
    expect(textOf(events)).toBe('cut');
    expect(error?.code).toBe('upstream_stream_interrupted');
  });
});

describe('anthropic errors', () => {
  it.each([
    [401, 'authentication_error', 'upstream_auth_failed'],
    [403, 'permission_error', 'upstream_auth_failed'],
    [404, 'not_found_error', 'upstream_model_not_found'],
    [429, 'rate_limit_error', 'upstream_rate_limited'],
    [500, 'api_error', 'upstream_error'],
    [529, 'overloaded_error', 'upstream_unavailable'],
    [400, 'invalid_request_error', 'upstream_bad_request'],
  ])('%i %s → %s', (status, type, code) => {
    const error = anthropicError({ status, detail: { type, message: 'invalid x-api-key sk-ant-secret-1234' }, provider: 'claude', secrets: ['sk-ant-secret-1234'] });
    expect(error.code).toBe(code);
    expect(error.message).not.toContain('sk-ant-secret-1234');
  });
});

describe('request conversion', () => {
  it('merges consecutive turns of one role and lifts system and developer messages', () => {
    const { system, messages } = convertMessages([
      { role: 'system', content: 'A' },
      { role: 'developer', content: 'B' },
      { role: 'user', content: 'one' },
      { role: 'user', content: 'two' },
    ]);
    expect(system).toBe('A\n\nB');
    expect(messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'one' }, { type: 'text', text: 'two' }] }]);
  });

  it('decodes a non-streamed message with a tool call', () => {
    expect(decodeMessage({ content: [{ type: 'tool_use', id: 't', name: 'f', input: { a: 1 } }], stop_reason: 'tool_use', usage: { input_tokens: 1, output_tokens: 2 } }, { provider: 'p', secrets: [] })).toEqual([
      { type: 'tool-call-delta', index: 0, id: 't', name: 'f', argumentsDelta: '{"a":1}' },
      { type: 'usage', usage: { promptTokens: 1, completionTokens: 2, totalTokens: 3, estimated: false } },
      { type: 'end', finishReason: 'tool_calls' },
    ]);
  });
});
