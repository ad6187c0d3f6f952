// Tracing (docs/tracing.md): with `tracing.otlpEndpoint` set, each request to a route that is not
// public is one SERVER span, with one CLIENT span per upstream attempt under it, exported over
// OTLP/HTTP to a local receiver that decodes them. The caller's W3C traceparent is the parent; each
// attempt's traceparent goes upstream. Without `tracing:` the SDK is never loaded.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { ConfigError, resolveConfig } from '../src/config/load.js';
import { createStore } from '../src/store/create-store.js';
import { assertBuildIsCurrent, root } from './support/dist-freshness.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { sendError, startMockOpenAi, type MockOpenAi } from './support/mock-openai.js';
import { sparkCredentials, startMockSpark, type MockSpark } from './support/mock-spark.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './support/otlp-receiver.js';
import { waitFor } from './support/wait.js';

const SERVER = 2;
const CLIENT = 3;
const callerTraceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const callerSpanId = '00f067aa0ba902b7';

let upstream: MockOpenAi;
let spark: MockSpark;
let receiver: OtlpReceiver;
let gateway: TestGateway;

beforeAll(async () => {
  upstream = await startMockOpenAi({ apiKey: 'sk-traced' });
  spark = await startMockSpark();
  receiver = await startOtlpReceiver();
  gateway = await startGateway({
    providers: {
      main: { type: 'openai', baseUrl: upstream.baseUrl, apiKey: 'sk-traced' },
      spark: { type: 'spark', baseUrl: spark.baseUrl, ...sparkCredentials },
    },
    models: {
      chat: { provider: 'main', model: 'gpt-4o-mini' },
      max: { provider: 'spark', model: 'generalv3.5' },
      // The test makes gpt-4o answer 503, and the fallback serves.
      'chat-with-fallback': { provider: 'main', model: 'gpt-4o', fallbacks: ['main/gpt-4o-mini'] },
    },
    tracing: { otlpEndpoint: receiver.url, serviceName: 'sluice-test', exportDelayMs: 20, headers: { 'x-collector-key': 'collector-secret' } },
  });
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
  await spark?.close();
  await receiver?.close();
});
beforeEach(() => {
  upstream.reset();
  spark.reset();
  receiver.spans.length = 0;
});

function client(headers: Record<string, string> = {}): OpenAI {
  return new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused-auth-is-off', defaultHeaders: headers, maxRetries: 0 });
}

async function spansOfTrace(traceId: string, count: number): Promise<ReceivedSpan[]> {
  await waitFor(() => receiver.spans.filter((span) => span.traceId === traceId).length >= count, `${count.toString()} spans of trace ${traceId}`, 5000);
  return receiver.spans.filter((span) => span.traceId === traceId);
}

describe('tracing over OTLP/HTTP', () => {
  it('exports a request span under the caller traceparent, with a child span per attempt, and sends the attempt upstream', async () => {
    const stream = await client({ traceparent: `00-${callerTraceId}-${callerSpanId}-01` }).chat.completions.create({ model: 'chat', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text.length).toBeGreaterThan(0);

    const spans = await spansOfTrace(callerTraceId, 2);
    const server = spans.find((span) => span.kind === SERVER);
    const attempt = spans.find((span) => span.kind === CLIENT);
    expect(server).toBeDefined();
    expect(attempt).toBeDefined();
    if (!server || !attempt) return;
    expect(server.parentSpanId).toBe(callerSpanId);
    expect(server.serviceName).toBe('sluice-test');
    expect(server.name).toBe('POST /v1/chat/completions');
    expect(server.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.response.status_code': 200, 'gen_ai.request.model': 'chat', 'sluice.provider': 'main', 'sluice.outcome': 'completed' });
    expect(server.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);

    expect(attempt.parentSpanId).toBe(server.spanId);
    expect(attempt.name).toBe('upstream main');
    expect(attempt.attributes).toMatchObject({ 'sluice.provider': 'main', 'gen_ai.request.model': 'gpt-4o-mini', 'sluice.outcome': 'completed' });
    expect(attempt.attributes['sluice.time_to_first_token_ms']).toBeGreaterThanOrEqual(0);
    expect(attempt.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
    expect(attempt.events).toContain('first token');

    // The upstream saw the attempt's span as its parent, in the caller's trace.
    expect(upstream.requests[0]?.headers['traceparent']).toBe(`00-${callerTraceId}-${attempt.spanId}-01`);
    // The collector's header went with the export.
    expect(receiver.headers.at(-1)?.['x-collector-key']).toBe('collector-secret');
  });

  it('sends the attempt traceparent on Spark WebSocket handshake', async () => {
    const traceId = 'bbbbccccddddeeee0000111122223333';
    await client({ traceparent: `00-${traceId}-1111222233334444-01` }).chat.completions.create({ model: 'max', messages: [{ role: 'user', content: 'hi' }] });
    const spans = await spansOfTrace(traceId, 2);
    const attempt = spans.find((span) => span.kind === CLIENT);
    expect(attempt?.attributes['sluice.provider']).toBe('spark');
    expect(spark.handshakes[0]?.['traceparent']).toBe(`00-${traceId}-${attempt?.spanId ?? ''}-01`);
  });

  it('records a failed attempt that was retried elsewhere as its own span', async () => {
    const traceId = 'aaaabbbbccccdddd0000111122223333';
    upstream.handlers.push((_request, response, body) => {
      if (body['model'] !== 'gpt-4o') return false;
      sendError(response, 503, 'The engine is currently overloaded.', 'server_error', null);
      return true;
    });
    const answer = await client({ traceparent: `00-${traceId}-1111222233334444-01` }).chat.completions.create({ model: 'chat-with-fallback', messages: [{ role: 'user', content: 'hi' }] });
    expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);

    const spans = await spansOfTrace(traceId, 3);
    const attempts = spans.filter((span) => span.kind === CLIENT);
    expect(attempts.map((span) => span.attributes['gen_ai.request.model']).sort()).toEqual(['gpt-4o', 'gpt-4o-mini']);
    const failed = attempts.find((span) => span.attributes['gen_ai.request.model'] === 'gpt-4o');
    expect(failed?.attributes).toMatchObject({ 'sluice.outcome': 'retried', 'sluice.error_code': 'upstream_unavailable' });
    expect(failed?.statusCode).toBe(2);
    // Each attempt carried its own span id upstream.
    expect(new Set(upstream.requests.map((request) => request.headers['traceparent'])).size).toBe(2);
  });

  it('traces each chat on a WebSocket under the upgrade request traceparent, and a refused chat as an error', async () => {
    const traceId = 'c0ffee00c0ffee00c0ffee00c0ffee00';
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/api/ws`, { headers: { traceparent: `00-${traceId}-1111222233334444-01` } });
    const frames: { type: string; id?: string; code?: string }[] = [];
    socket.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString('utf8')) as { type: string; id?: string; code?: string }));
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
      });
      socket.send(JSON.stringify({ type: 'chat', id: 'c1', model: 'chat', message: 'hi' }));
      await waitFor(() => frames.some((frame) => frame.type === 'done' && frame.id === 'c1'), 'the chat to end', 5000);
      socket.send(JSON.stringify({ type: 'chat', id: 'c2', model: 'no-such-model', message: 'hi' }));
      await waitFor(() => frames.some((frame) => frame.type === 'error' && frame.id === 'c2'), 'the refusal', 5000);
    } finally {
      socket.close();
    }
    const spans = await spansOfTrace(traceId, 3);
    const chats = spans.filter((span) => span.kind === SERVER && span.name === 'websocket chat');
    expect(chats).toHaveLength(2);
    const [served, refused] = chats[0]?.attributes['sluice.outcome'] === 'completed' ? chats : [...chats].reverse();
    expect(served?.parentSpanId).toBe('1111222233334444');
    expect(served?.attributes).toMatchObject({ 'http.route': '/api/ws', 'gen_ai.request.model': 'chat', 'sluice.provider': 'main', 'sluice.outcome': 'completed', 'http.response.status_code': 101 });
    expect(served?.statusCode).not.toBe(2);
    const attempt = spans.find((span) => span.kind === CLIENT);
    expect(attempt?.parentSpanId).toBe(served?.spanId);
    expect(upstream.requests[0]?.headers['traceparent']).toBe(`00-${traceId}-${attempt?.spanId ?? ''}-01`);
    expect(refused?.statusCode).toBe(2);
    expect(refused?.attributes['sluice.error_code']).toBe(frames.find((frame) => frame.id === 'c2')?.code);
  });

  it('marks a request that failed as an error span, and does not trace public routes', async () => {
    const traceId = '99998888777766665555444433332222';
    upstream.handlers.push((_request, response) => {
      sendError(response, 400, 'bad things', 'invalid_request_error', null);
      return true;
    });
    await expect(client({ traceparent: `00-${traceId}-1111222233334444-01` }).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] })).rejects.toThrow();
    const spans = await spansOfTrace(traceId, 2);
    const server = spans.find((span) => span.kind === SERVER);
    expect(server?.statusCode).toBe(2);
    expect(server?.attributes['http.response.status_code']).toBe(400);

    const health = await fetch(`${gateway.url}/healthz`, { headers: { traceparent: '00-12341234123412341234123412341234-1111222233334444-01' } });
    expect(health.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(receiver.spans.filter((span) => span.traceId === '12341234123412341234123412341234')).toEqual([]);
  });
});

describe('sampling', () => {
  it('records none of its own traces at ratio 0, still propagates, and follows a caller that sampled', async () => {
    const quiet = await startOtlpReceiver();
    const mock = await startMockOpenAi({ apiKey: 'sk-sampled' });
    const sampled = await startGateway({
      providers: { main: { type: 'openai', baseUrl: mock.baseUrl, apiKey: 'sk-sampled' } },
      models: { chat: { provider: 'main', model: 'gpt-4o-mini' } },
      tracing: { otlpEndpoint: quiet.url, sampleRatio: 0, exportDelayMs: 20 },
    });
    try {
      const openai = new OpenAI({ baseURL: `${sampled.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      await openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
      // Not sampled: the upstream still gets a traceparent, flagged 00.
      expect(mock.requests[0]?.headers['traceparent']).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);

      const traceId = '0123456789abcdef0123456789abcdef';
      await openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] }, { headers: { traceparent: `00-${traceId}-0123456789abcdef-01` } });
      await waitFor(() => quiet.spans.length >= 2, 'the sampled request spans', 5000);
    } finally {
      await sampled.close();
      await mock.close();
    }
    // Shutdown flushed the batch: exactly the caller-sampled request is there.
    expect(new Set(quiet.spans.map((span) => span.traceId))).toEqual(new Set(['0123456789abcdef0123456789abcdef']));
    await quiet.close();
  });
});

describe('configuration', () => {
  it('refuses a sampling ratio out of range, naming the field', () => {
    expect(() => resolveConfig({ tracing: { otlpEndpoint: 'http://127.0.0.1:4318/v1/traces', sampleRatio: 2 } }, {}, 'test config')).toThrow(ConfigError);
    expect(() => resolveConfig({ tracing: { otlpEndpoint: 'http://127.0.0.1:4318/v1/traces', sampleRatio: 2 } }, {}, 'test config')).toThrow(/tracing\.sampleRatio.*between 0 and 1/);
    expect(() => resolveConfig({ tracing: { otlpEndpoint: 'ftp://collector' } }, {}, 'test config')).toThrow(/tracing\.otlpEndpoint/);
  });

  it('will not start an app whose config asks for tracing without a tracer', async () => {
    const config = resolveConfig({ store: { url: 'sqlite::memory:' }, tracing: { otlpEndpoint: 'http://127.0.0.1:4318/v1/traces' } }, {}, 'test config');
    const store = await createStore(config.store.url);
    try {
      expect(() => createApp({ config, store })).toThrow(/startTracing/);
    } finally {
      await store.close();
    }
  });
});

describe('with tracing off', () => {
  it('never loads the OpenTelemetry SDK while serving a stream', () => {
    assertBuildIsCurrent();
    const script = `
      import { createApp } from './dist/app.js';
      import { resolveConfig } from './dist/config/load.js';
      import { createStore } from './dist/store/create-store.js';
      const config = resolveConfig({ auth: { mode: 'none' }, server: { port: 0 }, store: { url: 'sqlite::memory:' } }, {}, 'inline');
      const store = await createStore(config.store.url);
      const app = createApp({ config, store });
      const { port } = await app.listen();
      const answer = await fetch('http://127.0.0.1:' + port + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'sluice-demo', stream: true, messages: [{ role: 'user', content: 'hi' }] }) });
      const text = await answer.text();
      await app.shutdown(100);
      await store.close();
      await new Promise((resolve) => setTimeout(resolve, 50));
      process.stdout.write('RESULT ' + JSON.stringify({ done: text.includes('[DONE]'), modules: globalThis.loadedModules.filter((url) => url.includes('opentelemetry')), count: globalThis.loadedModules.length }));
    `;
    const child = spawnSync(process.execPath, ['--import', join(root, 'test/support/record-loaded-modules.mjs'), '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 20_000 });
    expect(child.stderr).toBe('');
    const result = JSON.parse(child.stdout.split('RESULT ')[1] ?? 'null') as { done: boolean; modules: string[]; count: number };
    expect(result.done).toBe(true);
    // The recorder works (it saw the app's modules) and none of them is OpenTelemetry's.
    expect(result.count).toBeGreaterThan(50);
    expect(result.modules).toEqual([]);
  });
});
