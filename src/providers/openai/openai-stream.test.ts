// Recorded OpenAI-compatible streams, replayed read by read, decode into the right StreamEvents;
// upstream error statuses map to the right codes without leaking keys.
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SluiceError } from '../../errors/sluice-error.js';
import type { StreamEvent } from '../../relay/stream-event.js';
import { readSseEvents } from '../shared/sse-reader.js';
import { decodeChunkStream, decodeCompletion } from './stream.js';
import { statusError } from './errors.js';

const fixtures = new URL('./__fixtures__/', import.meta.url);

async function* reads(name: string): AsyncGenerator<Uint8Array> {
  const lines = readFileSync(new URL(`openai-${name}.chunks.txt`, fixtures), 'utf8').split('\n').filter(Boolean);
  for (const line of lines) {
    await Promise.resolve();
    yield Buffer.from(JSON.parse(line) as string, 'latin1');
  }
}

async function replay(name: string): Promise<{ events: StreamEvent[]; error?: SluiceError }> {
  const events: StreamEvent[] = [];
  try {
    const messages = readSseEvents(reads(name), { maxEventBytes: 1 << 20, provider: 'p' });
    for await (const batch of decodeChunkStream(messages, { provider: 'p', secrets: [] })) events.push(...batch);
    return { events };
  } catch (error) {
    return { events, error: error as SluiceError };
  }
}

const textOf = (events: StreamEvent[]) => events.map((event) => (event.type === 'text-delta' ? event.text : '')).join('');

describe('recorded OpenAI streams', () => {
  it('has a test for every fixture', () => {
    const names = readdirSync(fixtures).filter((file) => file.endsWith('.chunks.txt'));
    expect(names.sort()).toEqual(
      ['crlf-and-comments', 'error-mid-stream', 'malformed', 'no-done', 'refusal', 'text', 'tool-calls', 'truncated', 'usage'].map((name) => `openai-${name}.chunks.txt`),
    );
  });

  it('text: characters split across reads arrive whole', async () => {
    const { events, error } = await replay('text');
    expect(error).toBeUndefined();
    expect(textOf(events)).toBe('你好，世界 🙂');
    expect(events.at(-1)).toEqual({ type: 'end', finishReason: 'stop' });
  });

  it('usage: the provider figures, before end', async () => {
    const { events } = await replay('usage');
    expect(events.slice(-2)).toEqual([
      { type: 'usage', usage: { promptTokens: 9, completionTokens: 1, totalTokens: 10, estimated: false } },
      { type: 'end', finishReason: 'stop' },
    ]);
  });

  it('tool-calls: deltas by index, arguments in pieces', async () => {
    const { events } = await replay('tool-calls');
    expect(events.filter((event) => event.type === 'tool-call-delta')).toEqual([
      { type: 'tool-call-delta', index: 0, id: 'call_a', name: 'lookup' },
      { type: 'tool-call-delta', index: 0, argumentsDelta: '{"q":"北' },
      { type: 'tool-call-delta', index: 0, argumentsDelta: '京"}' },
      { type: 'tool-call-delta', index: 1, id: 'call_b', name: 'now', argumentsDelta: '{}' },
    ]);
    expect(events.at(-1)).toEqual({ type: 'end', finishReason: 'tool_calls' });
  });

  it('refusal: content_filter is kept as the finish reason', async () => {
    expect((await replay('refusal')).events.at(-1)).toEqual({ type: 'end', finishReason: 'content_filter' });
  });

  it('no-done: a finish_reason without [DONE] still completes', async () => {
    const { events, error } = await replay('no-done');
    expect(error).toBeUndefined();
    expect(textOf(events)).toBe('no done');
  });

  it.each([
    ['error-mid-stream', 'upstream_error', 'partial'],
    ['truncated', 'upstream_stream_interrupted', 'cut'],
    ['malformed', 'upstream_protocol_error', 'ok'],
  ])('%s fails with %s after the text before it', async (name, code, before) => {
    const { events, error } = await replay(name);
    expect(error?.code).toBe(code);
    expect(textOf(events)).toBe(before);
  });

  it('crlf-and-comments: CRLF, comments, event lines and data without a space are accepted', async () => {
    const { events, error } = await replay('crlf-and-comments');
    expect(error).toBeUndefined();
    expect(textOf(events)).toBe('ab');
  });
});

describe('decodeCompletion', () => {
  it('turns a chat.completion with tool calls into events', () => {
    const events = decodeCompletion(
      {
        choices: [{ message: { content: null, tool_calls: [{ id: 'c1', function: { name: 'f', arguments: '{}' } }] }, finish_reason: 'tool_calls' }],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      },
      { provider: 'p', secrets: [] },
    );
    expect(events).toEqual([
      { type: 'tool-call-delta', index: 0, id: 'c1', name: 'f', argumentsDelta: '{}' },
      { type: 'usage', usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2, estimated: false } },
      { type: 'end', finishReason: 'tool_calls' },
    ]);
  });
});

describe('statusError', () => {
  const secrets = ['sk-secret-1234567890'];
  const map = (status: number, message: string, code?: string, retryAfterSeconds?: number) =>
    statusError({ status, detail: { message, ...(code ? { code } : {}) }, provider: 'p', retryAfterSeconds, secrets });

  it('401/403 → upstream_auth_failed without the upstream text', () => {
    for (const status of [401, 403]) {
      const error = map(status, 'Incorrect API key provided: sk-secret-1234567890');
      expect(error.code).toBe('upstream_auth_failed');
      expect(error.message).not.toContain('sk-secret');
      expect(error.message).not.toContain('Incorrect API key');
    }
  });

  it('maps 404, 429, insufficient_quota, 500, 503 and 400', () => {
    expect(map(404, 'no model').code).toBe('upstream_model_not_found');
    expect(map(429, 'slow down', 'rate_limit_exceeded', 7)).toMatchObject({ code: 'upstream_rate_limited', retryAfterSeconds: 7 });
    expect(map(429, 'quota', 'insufficient_quota').code).toBe('upstream_quota_exceeded');
    expect(map(500, 'boom').code).toBe('upstream_error');
    expect(map(503, 'busy').code).toBe('upstream_unavailable');
    expect(map(400, 'bad max_tokens for key sk-secret-1234567890').message).toBe('Provider "p" answered 400: bad max_tokens for key [redacted]');
  });
});
