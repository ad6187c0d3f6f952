// Recorded OpenAI-compatible streams, replayed read by read, decode into the right StreamEvents,
// whatever the reads' boundaries; upstream error statuses map to the right codes without leaking
// keys.
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SluiceError } from '../../errors/sluice-error.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { parseErrorDetail, statusError } from './errors.js';
import { chunkStreamDecoder, decodeCompletion } from './stream.js';
import { replayReads } from '../../../test/support/pushed-events.js';
import { seededRandom } from '../../../test/support/seeded-random.js';

const fixtures = new URL('./__fixtures__/', import.meta.url);
const decodeOptions = { provider: 'p', secrets: ['sk-proj-SECRET123456'] };

/** The recorded reads of a fixture (format: __fixtures__/README.md). */
function recordedReads(scenario: string): Uint8Array[] {
  const lines = readFileSync(new URL(`openai-${scenario}.chunks.txt`, fixtures), 'utf8').split('\n').filter(Boolean);
  return lines.map((line, index) => {
    const text = JSON.parse(line) as string;
    if (/[^\u0000-\u00ff]/.test(text)) throw new Error(`openai-${scenario}.chunks.txt line ${(index + 1).toString()}: a character above U+00FF is not a byte`);
    return Buffer.from(text, 'latin1');
  });
}

interface Replay {
  events: StreamEvent[];
  error?: { code: string; message: string };
}

/** Runs reads through the HTTP shell's body reader and the chunk decoder, as the adapter does. */
async function replay(parts: readonly Uint8Array[]): Promise<Replay> {
  const { events, error } = await replayReads(chunkStreamDecoder({ ...decodeOptions, maxEventBytes: 1 << 20 }), parts);
  if (error === undefined) return { events };
  if (!(error instanceof SluiceError)) throw new Error('not a SluiceError', { cause: error });
  return { events, error: { code: error.code, message: error.message } };
}

const text = (value: string): StreamEvent => ({ type: 'text-delta', text: value });
const end = (finishReason: Extract<StreamEvent, { type: 'end' }>['finishReason']): StreamEvent => ({ type: 'end', finishReason });
const usage = (promptTokens: number, completionTokens: number, totalTokens: number): StreamEvent => ({
  type: 'usage',
  usage: { promptTokens, completionTokens, totalTokens, estimated: false },
});

const expectations: Record<string, Replay> = {
  text: { events: [text('你好'), text('，世界'), text(' 🙂'), text(' Hello\n"quoted"'), end('stop')] },
  usage: { events: [text('Hi'), text(' there'), text('!'), usage(9, 3, 12), end('stop')] },
  'tool-calls': {
    events: [
      { type: 'tool-call-delta', index: 0, id: 'call_Q1w2E3', name: 'get_weather' },
      { type: 'tool-call-delta', index: 0, argumentsDelta: '{"' },
      { type: 'tool-call-delta', index: 0, argumentsDelta: 'city' },
      { type: 'tool-call-delta', index: 0, argumentsDelta: '":"北京' },
      { type: 'tool-call-delta', index: 0, argumentsDelta: '"}' },
      { type: 'tool-call-delta', index: 1, id: 'call_R4t5Y6', name: 'get_time' },
      { type: 'tool-call-delta', index: 1, argumentsDelta: '{"tz":' },
      { type: 'tool-call-delta', index: 1, argumentsDelta: '"Asia/Shanghai"}' },
      usage(80, 31, 111),
      end('tool_calls'),
    ],
  },
  'error-mid-stream': {
    events: [text('partial')],
    error: { code: 'upstream_error', message: 'Provider "p" failed mid-stream: The server had an error while processing your request. Sorry about that!' },
  },
  refusal: { events: [text('I can'), end('content_filter')] },
  'no-done': { events: [text('no done'), end('stop')] },
  truncated: { events: [text('cut')], error: { code: 'upstream_stream_interrupted', message: 'Provider "p" closed the stream before the answer was complete.' } },
  malformed: {
    events: [text('ok')],
    error: { code: 'upstream_protocol_error', message: 'Provider "p" sent an event that is not JSON: "<html><body>502 Bad Gateway</body></html>"' },
  },
  'crlf-and-comments': { events: [text('a'), text('好'), text('b'), end('stop')] },
};

describe('recorded OpenAI streams', () => {
  it('has an expectation for every fixture, and a fixture for every expectation', () => {
    const scenarios = readdirSync(fixtures)
      .filter((file) => file.endsWith('.chunks.txt'))
      .map((file) => file.replace(/^openai-|\.chunks\.txt$/g, ''));
    expect(scenarios.sort()).toEqual(Object.keys(expectations).sort());
  });

  it.each(Object.entries(expectations))('%s', async (scenario, expected) => {
    const reads = recordedReads(scenario);
    expect(reads.length).toBeGreaterThan(1);
    expect(await replay(reads)).toEqual(expected);
  });

  it.each(['text', 'tool-calls', 'crlf-and-comments'])('%s: the recording cuts a character inside its bytes, and none is damaged', async (scenario) => {
    const reads = recordedReads(scenario);
    const strict = new TextDecoder('utf-8', { fatal: true });
    const isWholeUtf8 = (read: Uint8Array) => {
      try {
        strict.decode(read);
        return true;
      } catch {
        return false;
      }
    };
    // Some read, decoded alone, is not valid UTF-8: it starts or ends inside a character.
    expect(reads.every(isWholeUtf8)).toBe(false);
    expect(JSON.stringify((await replay(reads)).events)).not.toContain('\uFFFD');
  });

  it.each(Object.keys(expectations))('%s: the same events however the bytes are cut into reads', async (scenario) => {
    const body = Buffer.concat(recordedReads(scenario));
    const expected = expectations[scenario];
    expect(await replay([body])).toEqual(expected);
    expect(await replay(Array.from(body, (byte) => Uint8Array.of(byte)))).toEqual(expected);
    const next = seededRandom(scenario.length);
    for (let round = 0; round < 1000; round++) {
      const cuts = Array.from({ length: 1 + Math.floor(next() * 20) }, () => Math.floor(next() * body.length)).sort((a, b) => a - b);
      const parts = [0, ...cuts].map((start, index) => body.subarray(start, cuts[index] ?? body.length));
      const result = await replay(parts);
      if (JSON.stringify(result) !== JSON.stringify(expected)) expect(result, `cuts ${cuts.join(',')}`).toEqual(expected);
    }
  });
});

describe('chunkStreamDecoder', () => {
  const decodeText = async (body: string) => replay([Buffer.from(body, 'utf8')]);

  it('maps an in-stream error code and scrubs secrets from its message', async () => {
    const result = await decodeText('data: {"error":{"message":"Rate limit reached for key sk-proj-SECRET123456","code":"rate_limit_exceeded"}}\n\n');
    expect(result.error).toEqual({ code: 'upstream_rate_limited', message: 'Provider "p" failed mid-stream: Rate limit reached for key [redacted]' });
    const quota = await decodeText('data: {"error":{"message":"You exceeded your current quota","code":"insufficient_quota"}}\n\n');
    expect(quota.error?.code).toBe('upstream_quota_exceeded');
  });

  it('treats an `event: error` as an error even when its data has no error object', async () => {
    expect((await decodeText('event: error\ndata: {"detail":"overloaded"}\n\n')).error).toEqual({ code: 'upstream_error', message: 'Provider "p" failed mid-stream: no message' });
  });

  it('refuses a chunk of the wrong shape with upstream_protocol_error', async () => {
    expect((await decodeText('data: {"choices":[{"delta":{"content":42}}]}\n\n')).error).toMatchObject({ code: 'upstream_protocol_error', message: expect.stringContaining('choices[0].delta.content') as string });
    expect((await decodeText('data: [1,2]\n\n')).error?.code).toBe('upstream_protocol_error');
  });

  it('ignores what follows [DONE]', async () => {
    const chunk = (content: string) => `data: {"choices":[{"index":0,"delta":{"content":"${content}"},"finish_reason":null}]}\n\n`;
    expect(await decodeText(`${chunk('a')}data: [DONE]\n\n${chunk('b')}data: {not json\n\n`)).toEqual({ events: [text('a'), end('stop')] });
  });

  it('keeps the last usage figures and maps function_call to tool_calls', async () => {
    const body = [
      'data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}],"usage":{"prompt_tokens":1,"completion_tokens":1}}',
      'data: {"choices":[{"index":0,"delta":{},"finish_reason":"function_call"}],"usage":{"prompt_tokens":5,"completion_tokens":2}}',
    ].join('\n\n');
    expect(await decodeText(`${body}\n\n`)).toEqual({ events: [text('x'), usage(5, 2, 7), end('tool_calls')] });
  });

  it('reports an empty 200 stream as interrupted, never as an empty success', async () => {
    expect((await decodeText('')).error?.code).toBe('upstream_stream_interrupted');
    expect((await decodeText(': keep-alive\n\n')).error?.code).toBe('upstream_stream_interrupted');
  });
});

describe('decodeCompletion', () => {
  it('turns a chat.completion with two tool calls into the events a stream would give', () => {
    const events = decodeCompletion(
      {
        id: 'chatcmpl-1',
        object: 'chat.completion',
        model: 'gpt-4o-mini-2024-07-18',
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: null,
              refusal: null,
              tool_calls: [
                { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"北京"}' } },
                { id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{}' } },
              ],
            },
            logprobs: null,
            finish_reason: 'tool_calls',
          },
        ],
        usage: { prompt_tokens: 80, completion_tokens: 31, total_tokens: 111 },
      },
      decodeOptions,
    );
    expect(events).toEqual([
      { type: 'tool-call-delta', index: 0, id: 'call_a', name: 'get_weather', argumentsDelta: '{"city":"北京"}' },
      { type: 'tool-call-delta', index: 1, id: 'call_b', name: 'get_time', argumentsDelta: '{}' },
      usage(80, 31, 111),
      end('tool_calls'),
    ]);
  });

  it('gives text, then end, when there is no usage', () => {
    expect(decodeCompletion({ choices: [{ message: { content: 'hi' }, finish_reason: 'length' }] }, decodeOptions)).toEqual([text('hi'), end('length')]);
  });

  it('refuses a body of another shape with upstream_protocol_error', () => {
    for (const body of [{}, { choices: [] }, { choices: [{ message: 'hi' }] }, 'text']) {
      expect(() => decodeCompletion(body, decodeOptions)).toThrow(expect.objectContaining({ code: 'upstream_protocol_error' }) as Error);
    }
  });
});

describe('statusError', () => {
  const secret = 'sk-proj-SECRET123456';
  const map = (status: number, detail: { message?: string; code?: string; type?: string }, retryAfterSeconds?: number) =>
    statusError({ status, detail, provider: 'p', retryAfterSeconds, secrets: [secret] });

  it.each([401, 403])('%i → upstream_auth_failed, without the upstream text (it can quote the key)', (status) => {
    const error = map(status, { message: `Incorrect API key provided: ${secret}. You can find your API key at https://platform.openai.com/account/api-keys.`, code: 'invalid_api_key' });
    expect(error.code).toBe('upstream_auth_failed');
    expect(error.status).toBe(502);
    expect(error.upstreamStatus).toBe(status);
    expect(error.message).not.toContain('SECRET');
    expect(error.message).not.toContain('Incorrect API key');
    expect(error.message).toBe(`Provider "p" answered ${status.toString()}. The provider rejected the gateway's credentials; check the provider key in the gateway config.`);
  });

  it('429 with insufficient_quota (as code or type) → upstream_quota_exceeded', () => {
    expect(map(429, { message: 'You exceeded your current quota', code: 'insufficient_quota' }).code).toBe('upstream_quota_exceeded');
    expect(map(429, { message: 'You exceeded your current quota', type: 'insufficient_quota' }).code).toBe('upstream_quota_exceeded');
  });

  it('429 → upstream_rate_limited, with retryAfterSeconds', () => {
    const error = map(429, { message: 'Rate limit reached', code: 'rate_limit_exceeded' }, 7);
    expect(error).toMatchObject({ code: 'upstream_rate_limited', retryAfterSeconds: 7, upstreamStatus: 429, status: 429 });
    expect(map(429, {}).retryAfterSeconds).toBeUndefined();
  });

  it.each([
    [500, 'upstream_error'],
    [502, 'upstream_error'],
    [503, 'upstream_unavailable'],
    [404, 'upstream_model_not_found'],
    [422, 'upstream_bad_request'],
  ])('%i → %s', (status, code) => {
    expect(map(status, { message: 'boom' }).code).toBe(code);
  });

  it('400 passes the upstream message on, with secrets scrubbed', () => {
    const error = map(400, { message: `max_tokens is too large: 999999 (key ${secret})` });
    expect(error).toMatchObject({ code: 'upstream_bad_request', status: 400 });
    expect(error.message).toBe('Provider "p" answered 400: max_tokens is too large: 999999 (key [redacted])');
  });

  it('without an upstream message, says what the code means', () => {
    expect(map(500, {}).message).toBe('Provider "p" answered 500. The provider failed.');
  });
});

describe('parseErrorDetail', () => {
  it('reads an OpenAI error body, a string error, and plain text', () => {
    expect(parseErrorDetail('{"error":{"message":"m","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}')).toEqual({ message: 'm', type: 'invalid_request_error', code: 'invalid_api_key' });
    expect(parseErrorDetail('{"error":{"message":"m","code":1214}}')).toEqual({ message: 'm', code: '1214' });
    expect(parseErrorDetail('{"error":"quota exhausted"}')).toEqual({ message: 'quota exhausted' });
    expect(parseErrorDetail('  <html>Bad Gateway</html>\n')).toEqual({ message: '<html>Bad Gateway</html>' });
    expect(parseErrorDetail('{"detail":"x"}')).toEqual({});
    expect(parseErrorDetail('')).toEqual({});
  });
});

describe('chunkStreamDecoder: text chunks read from their bytes', () => {
  const pieces = ['a', ' ', '"', '\\', '\n', '\u0000', 'é', '你好', '🙂', '"}', '\u2028', '/', '</script>', 'data: [DONE]'];
  /** A stream of many text chunks in one frame, hostile text included, as OpenAI sends them (with or without padding). */
  function generated(seed: number, obfuscated: boolean): { body: Buffer; texts: string[] } {
    const next = seededRandom(seed);
    const texts: string[] = [];
    let body = '';
    for (let index = 0; index < 120; index++) {
      let text = '';
      for (let count = Math.floor(next() * 5); count > 0; count--) text += pieces[Math.floor(next() * pieces.length)] ?? '';
      texts.push(text);
      const chunk = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }], ...(obfuscated ? { obfuscation: 'x'.repeat(index % 7) } : {}) };
      body += `data: ${JSON.stringify(chunk)}\n\n`;
    }
    body += `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] })}\n\ndata: [DONE]\n\n`;
    return { body: Buffer.from(body), texts };
  }

  it.each([false, true])('gives every text exactly, however the bytes are cut (obfuscation padding: %s)', async (obfuscated) => {
    const { body, texts } = generated(obfuscated ? 2 : 1, obfuscated);
    const expected: Replay = { events: [...texts.filter((text) => text !== '').map(text), end('stop')] };
    expect(await replay([body])).toEqual(expected);
    const next = seededRandom(7);
    for (let round = 0; round < 300; round++) {
      const cuts = Array.from({ length: 1 + Math.floor(next() * 40) }, () => Math.floor(next() * body.length)).sort((a, b) => a - b);
      const parts = [0, ...cuts].map((start, index) => body.subarray(start, cuts[index] ?? body.length));
      const result = await replay(parts);
      if (JSON.stringify(result) !== JSON.stringify(expected)) expect(result, `cuts ${cuts.join(',')}`).toEqual(expected);
    }
  });

  it('reads a text chunk followed by an `event: error` line in the same event as the error it is', async () => {
    const frame = (content: string) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n`;
    const result = await replay([Buffer.from(`${frame('a')}\n${frame('b')}event: error\n\n`)]);
    expect(result.events).toEqual([text('a')]);
    expect(result.error?.code).toBe('upstream_error');
  });
});
