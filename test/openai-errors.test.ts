// Errors on the OpenAI-compatible route: before the first byte a status and an OpenAI error body;
// after it an in-band error chunk and the end of the stream. Provider keys never leak.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockOpenAi, sendError, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, openAiConfig, type TestGateway } from './support/gateway.js';

let upstream: MockOpenAi;
let gateway: TestGateway;

beforeAll(async () => {
  upstream = await startMockOpenAi();
  gateway = await startGateway(
    openAiConfig(upstream.baseUrl, upstream.apiKey, {
      server: { bodyLimitBytes: 4096 },
      providers: {
        upstream: { type: 'openai', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey },
        wrongkey: { type: 'openai', baseUrl: upstream.baseUrl, apiKey: 'sk-wrong-secret-value-987654321' },
        small: { type: 'openai', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey, maxEventBytes: 65536 },
      },
    }),
  );
});
afterAll(async () => {
  await gateway.close();
  await upstream.close();
});
beforeEach(() => upstream.reset());

const chat = (model: string, stream = true) => ({ model, stream, messages: [{ role: 'user', content: 'hi' }] });

async function post(body: unknown): Promise<Response> {
  return fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

async function expectError(response: Response, status: number, code: string): Promise<ErrorBody> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toContain('application/json');
  const body = (await response.json()) as ErrorBody;
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
  return body;
}

/** Writes a few good chunks, then does `then` to the response. */
function partialStream(then: (write: (data: string) => void, end: () => void, destroy: () => void) => void) {
  upstream.handlers.push((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    const write = (data: string) => response.write(`data: ${data}\n\n`);
    for (const text of ['one ', 'two ']) write(JSON.stringify({ choices: [{ index: 0, delta: { content: text }, finish_reason: null }] }));
    setTimeout(() => then(write, () => response.end(), () => response.socket?.destroy()), 30);
    return true;
  });
}

function inBand(text: string): { contents: string; error: ErrorBody['error'] | undefined; done: boolean } {
  const payloads = text.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6));
  let contents = '';
  let error: ErrorBody['error'] | undefined;
  for (const payload of payloads) {
    if (payload === '[DONE]') continue;
    const json = JSON.parse(payload) as Partial<ErrorBody> & { choices?: { delta: { content?: string } }[] };
    if (json.error) error = json.error;
    contents += json.choices?.[0]?.delta.content ?? '';
  }
  return { contents, error, done: payloads.includes('[DONE]') };
}

describe('upstream errors before the first byte', () => {
  it('401 becomes 502 upstream_auth_failed, and the key appears nowhere', async () => {
    const body = await expectError(await post(chat('wrongkey/gpt-4o-mini')), 502, 'upstream_auth_failed');
    expect(JSON.stringify(body)).not.toContain('sk-wrong-secret-value-987654321');
    expect(JSON.stringify(body)).not.toContain(upstream.apiKey);
    const logs = gateway.logs.join('');
    expect(logs).not.toContain('sk-wrong-secret-value-987654321');
    expect(logs).not.toContain(upstream.apiKey);
  });

  it('429 keeps its status and Retry-After', async () => {
    upstream.handlers.push((_request, response) => {
      sendError(response, 429, 'Rate limit reached for requests', 'requests', 'rate_limit_exceeded', { 'retry-after': '7' });
      return true;
    });
    const response = await post(chat('gpt-test'));
    expect(response.headers.get('retry-after')).toBe('7');
    await expectError(response, 429, 'upstream_rate_limited');
  });

  it('insufficient_quota is a 429 that says so', async () => {
    upstream.handlers.push((_request, response) => {
      sendError(response, 429, 'You exceeded your current quota', 'insufficient_quota', 'insufficient_quota');
      return true;
    });
    await expectError(await post(chat('gpt-test')), 429, 'upstream_quota_exceeded');
  });

  it('500 becomes 502 upstream_error and 503 stays 503', async () => {
    upstream.handlers.push((_request, response) => {
      sendError(response, 500, 'The server had an error', 'server_error', null);
      return true;
    });
    await expectError(await post(chat('gpt-test')), 502, 'upstream_error');
    upstream.reset();
    upstream.handlers.push((_request, response) => {
      sendError(response, 503, 'overloaded', 'server_error', null);
      return true;
    });
    await expectError(await post(chat('gpt-test', false)), 503, 'upstream_unavailable');
  });

  it('an upstream 400 passes its message on', async () => {
    upstream.handlers.push((_request, response) => {
      sendError(response, 400, "max_tokens is too large: 999999. This model supports at most 16384", 'invalid_request_error', null);
      return true;
    });
    const body = await expectError(await post(chat('gpt-test')), 400, 'upstream_bad_request');
    expect(body.error.message).toContain('max_tokens is too large');
  });
});

describe('upstream errors after the first byte', () => {
  it('a reset mid-stream ends with an in-band upstream_stream_interrupted error and no [DONE]', async () => {
    partialStream((_write, _end, destroy) => destroy());
    const response = await post(chat('gpt-test'));
    expect(response.status).toBe(200);
    const result = inBand(await response.text());
    expect(result.contents).toBe('one two ');
    expect(result.error?.code).toBe('upstream_stream_interrupted');
    expect(result.done).toBe(false);
  });

  it('a malformed chunk is an in-band upstream_protocol_error', async () => {
    partialStream((write, end) => {
      write('{"choices": [ this is not json');
      end();
    });
    const result = inBand(await (await post(chat('gpt-test'))).text());
    expect(result.contents).toBe('one two ');
    expect(result.error?.code).toBe('upstream_protocol_error');
  });

  it('an upstream {"error":…} event becomes an in-band error', async () => {
    partialStream((write, end) => {
      write(JSON.stringify({ error: { message: 'The model is overloaded', type: 'server_error', code: null } }));
      end();
    });
    const result = inBand(await (await post(chat('gpt-test'))).text());
    expect(result.error?.code).toBe('upstream_error');
    expect(result.error?.message).toContain('overloaded');
  });

  it('a stream that closes with neither finish_reason nor [DONE] is an error, not an empty success', async () => {
    partialStream((_write, end) => end());
    const result = inBand(await (await post(chat('gpt-test'))).text());
    expect(result.error?.code).toBe('upstream_stream_interrupted');
  });
});

describe('large events', () => {
  it('relays a 2 MiB content delta intact', async () => {
    const big = '大'.repeat(1024 * 1024) + 'x'.repeat(1024 * 1024);
    upstream.plan = { pieces: ['start ', big, ' end'] };
    const result = inBand(await (await post(chat('gpt-test'))).text());
    expect(result.error).toBeUndefined();
    expect(result.contents.length).toBe(big.length + 10);
    expect(result.contents === `start ${big} end`).toBe(true);
  });

  it('refuses an event over maxEventBytes with upstream_event_too_large', async () => {
    upstream.plan = { pieces: ['x'.repeat(200_000)] };
    await expectError(await post(chat('small/gpt-4o-mini')), 502, 'upstream_event_too_large');
  });
});

describe('bad input gets a 4xx that names the field', () => {
  it.each([
    ['invalid JSON', '{"model": ', 400, 'invalid_json', null],
    ['a non-object body', '[1,2]', 400, 'invalid_request', null],
    ['a missing model', { messages: [{ role: 'user', content: 'hi' }] }, 400, 'invalid_request', 'model'],
    ['missing messages', { model: 'gpt-test' }, 400, 'invalid_request', 'messages'],
    ['empty messages', { model: 'gpt-test', messages: [] }, 400, 'invalid_request', 'messages'],
    ['a bad role', { model: 'gpt-test', messages: [{ role: 'robot', content: 'hi' }] }, 400, 'invalid_request', 'messages[0].role'],
    ['a wrong type', { model: 'gpt-test', temperature: 'hot', messages: [{ role: 'user', content: 'hi' }] }, 400, 'invalid_request', 'temperature'],
    ['stream not boolean', { model: 'gpt-test', stream: 'yes', messages: [{ role: 'user', content: 'hi' }] }, 400, 'invalid_request', 'stream'],
    ['an unknown model', { model: 'nope', messages: [{ role: 'user', content: 'hi' }] }, 404, 'model_not_found', 'model'],
  ] as const)('%s', async (_name, body, status, code, param) => {
    const error = await expectError(await post(body), status, code);
    expect(error.error.param).toBe(param);
    if (param) expect(error.error.message).toContain(param);
    expect(upstream.requests).toHaveLength(0);
  });

  it('a body over the limit gets 413', async () => {
    await expectError(await post({ model: 'gpt-test', messages: [{ role: 'user', content: 'x'.repeat(10_000) }] }), 413, 'body_too_large');
  });

  it('a wrong method gets 405 with Allow, an unknown route 404', async () => {
    const response = await fetch(`${gateway.url}/v1/chat/completions`);
    expect(response.headers.get('allow')).toBe('POST');
    await expectError(response, 405, 'method_not_allowed');
    await expectError(await fetch(`${gateway.url}/v1/nothing`), 404, 'not_found');
  });
});
