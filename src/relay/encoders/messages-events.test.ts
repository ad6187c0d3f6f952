// The Messages API encoder: the recorded sequences byte for byte, what the official
// `@anthropic-ai/sdk` assembles from them, the non-streamed message built from the same log, how
// each finish reason becomes a stop_reason, and errors as Anthropic bodies (`event: error`).
import { readFileSync } from 'node:fs';
import Anthropic, { APIError } from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import type { StreamEvent } from '../../contract/stream-event.js';
import { createMessagesEncoder, createMessagesSseEncoder, messageFromLog, type MessageIdentity } from './messages-events.js';
import { anthropicErrorBody } from './messages-error-body.js';

/** The identity the recordings were made with. */
const fixtureIdentity: MessageIdentity = { id: 'msg_fixtureGen01', model: 'claude-test', estimatedInputTokens: 28 };
const fixtures = new URL('./__fixtures__/', import.meta.url);

function recorded(scenario: string): { log: StreamEvent[]; sse: string } {
  const log = readFileSync(new URL(`messages-${scenario}.events.jsonl`, fixtures), 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as StreamEvent);
  return { log, sse: readFileSync(new URL(`messages-${scenario}.sse.txt`, fixtures), 'utf8') };
}

function sse(log: readonly StreamEvent[], identity: MessageIdentity = fixtureIdentity): string {
  const encode = createMessagesSseEncoder(identity);
  return log.map((event, seq) => encode(event, seq)).join('');
}

/** An Anthropic client whose every request is answered with `body` as an event stream. */
function clientAnswering(body: string): Anthropic {
  return new Anthropic({ apiKey: 'unused', baseURL: 'http://fixture.invalid', maxRetries: 0, fetch: async () => new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } }) });
}

const start: StreamEvent = { type: 'start', upstreamModel: 'm' };
const text = (value: string): StreamEvent => ({ type: 'text-delta', text: value });
const end = (finishReason: 'stop' | 'length' | 'tool_calls' | 'content_filter'): StreamEvent => ({ type: 'end', finishReason });

describe('recorded sequences', () => {
  for (const scenario of ['text-then-tool-use', 'stop-sequence']) {
    it(`${scenario}: the encoder writes the recording byte for byte`, () => {
      const { log, sse: expected } = recorded(scenario);
      expect(sse(log)).toBe(expected);
    });
  }

  it('the SDK\'s messages.stream() assembles the text, the tool_use input and the usage from the recording', async () => {
    const { log, sse: body } = recorded('text-then-tool-use');
    const message = await clientAnswering(body).messages.stream({ model: 'claude-test', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }).finalMessage();
    expect(message.content).toEqual([
      { type: 'text', text: 'Let me check the weather in 北京 🙂.\nOne moment.' },
      { type: 'tool_use', id: 'call_Wx4kQ9', name: 'get_weather', input: { city: '北京' } },
    ]);
    expect(message).toMatchObject({ id: 'msg_fixtureGen01', stop_reason: 'tool_use', stop_sequence: null, usage: { input_tokens: 31, output_tokens: 22 } });
    // The non-streamed answer is built from the same log by the same encoder.
    expect(messageFromLog(fixtureIdentity, log)).toEqual({ id: 'msg_fixtureGen01', type: 'message', role: 'assistant', model: 'claude-test', content: message.content, stop_reason: 'tool_use', stop_sequence: null, usage: { input_tokens: 31, output_tokens: 22 } });
  });

  it('a stop sequence the provider names is stop_reason stop_sequence with the sequence', async () => {
    const { sse: body } = recorded('stop-sequence');
    const message = await clientAnswering(body).messages.stream({ model: 'claude-test', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }).finalMessage();
    expect(message).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: '4' });
  });
});

describe('how an answer ends', () => {
  it.each([
    ['stop', 'end_turn'],
    ['length', 'max_tokens'],
    ['tool_calls', 'tool_use'],
    ['content_filter', 'refusal'],
  ] as const)('finish reason %s is stop_reason %s', (finishReason, stopReason) => {
    expect(messageFromLog(fixtureIdentity, [start, text('a'), end(finishReason)]).stop_reason).toBe(stopReason);
  });

  it('without provider usage, message_delta keeps the estimated input tokens', () => {
    const events = createMessagesEncoder(fixtureIdentity);
    const encoded = [start, text('a'), end('stop')].flatMap((event) => events.encode(event));
    expect(encoded.find((event) => event.type === 'message_delta')).toMatchObject({ usage: { input_tokens: 28, output_tokens: 0 } });
  });

  it('a failure after the first byte is one `event: error` with an Anthropic body, which the SDK throws', async () => {
    const log: StreamEvent[] = [start, text('partial'), { type: 'error', error: { code: 'upstream_idle_timeout', message: 'Provider "p" hit the idle timeout (100 ms).', retryable: true } }];
    const body = sse(log);
    expect(body.endsWith('event: error\ndata: {"type":"error","error":{"type":"timeout_error","message":"upstream_idle_timeout: Provider \\"p\\" hit the idle timeout (100 ms)."}}\n\n')).toBe(true);
    const error = await clientAnswering(body).messages.stream({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }).finalMessage().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(APIError);
  });

  it('nothing is written after the terminal event, and a text block is reopened after a tool call', () => {
    const encoder = createMessagesEncoder(fixtureIdentity);
    const log: StreamEvent[] = [start, { type: 'tool-call-delta', index: 0, name: 'f', argumentsDelta: 'not json' }, text('after'), end('stop'), text('late')];
    const types = log.flatMap((event) => encoder.encode(event)).map((event) => event.type);
    expect(types).toEqual(['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    // Arguments that are not a JSON object are kept whole, and a call without an id gets one.
    expect(encoder.snapshot().content[0]).toEqual({ type: 'tool_use', id: 'toolu_fixtureGen01_0', name: 'f', input: { _raw: 'not json' } });
  });
});

describe('error bodies', () => {
  it.each([
    ['invalid_request', 'invalid_request_error'],
    ['invalid_api_key', 'authentication_error'],
    ['model_not_allowed', 'permission_error'],
    ['model_not_found', 'not_found_error'],
    ['body_too_large', 'request_too_large'],
    ['rate_limited', 'rate_limit_error'],
    ['upstream_unavailable', 'overloaded_error'],
    ['upstream_first_byte_timeout', 'timeout_error'],
    ['internal_error', 'api_error'],
  ] as const)('%s is %s', (code, type) => {
    expect(anthropicErrorBody({ code, message: 'm', retryable: false })).toEqual({ type: 'error', error: { type, message: `${code}: m` } });
  });
});
