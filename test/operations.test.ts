// Health, readiness, models, metrics, request ids and the one log line per request.
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockOpenAi, sendError, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, openAiConfig, type TestGateway } from './support/gateway.js';
import { eventually } from './support/wait.js';

let upstream: MockOpenAi;
let gateway: TestGateway;

beforeAll(async () => {
  upstream = await startMockOpenAi();
  gateway = await startGateway(
    openAiConfig(upstream.baseUrl, upstream.apiKey, {
      providers: { upstream: { type: 'openai', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey, models: ['gpt-4o', 'gpt-4o-mini'] }, demo: { type: 'mock', delayMs: 0 } },
    }),
  );
});
afterAll(async () => {
  await gateway.close();
  await upstream.close();
});

const chat = (model: string, headers: Record<string, string> = {}) =>
  fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });

function logLines(): Record<string, unknown>[] {
  return gateway.logs.flatMap((text) => text.split('\n').filter(Boolean)).map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('operations', () => {
  it('lists models in the OpenAI shape', async () => {
    const body = (await (await fetch(`${gateway.url}/v1/models`)).json()) as { object: string; data: { id: string; object: string; owned_by: string }[] };
    expect(body.object).toBe('list');
    expect(body.data.map((model) => model.id)).toEqual(['gpt-test', 'upstream/gpt-4o', 'upstream/gpt-4o-mini', 'demo/sluice-demo']);
    expect(body.data[0]).toMatchObject({ object: 'model', owned_by: 'upstream' });
  });

  it('counts a stream in sluice_active_streams while its client holds it, and not once it left', async () => {
    const activeStreams = async () => Number(/^sluice_active_streams (\d+)$/m.exec(await (await fetch(`${gateway.url}/metrics`)).text())?.[1]);
    let held: ServerResponse | undefined;
    upstream.handlers.push((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(`data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta: { content: 'held' }, finish_reason: null }] })}\n\n`);
      held = response;
      return true;
    });
    const leave = new AbortController();
    try {
      const response = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hold on' }] }),
        signal: leave.signal,
      });
      const reader = response.body!.getReader();
      expect(new TextDecoder().decode((await reader.read()).value as Uint8Array)).toContain('held');
      expect(await activeStreams()).toBe(1);
      leave.abort();
      expect(await eventually(async () => ((await activeStreams()) === 0 ? true : undefined), 'the stream to stop counting')).toBe(true);
    } finally {
      held?.end();
      upstream.reset();
    }
  });

  it('answers health and readiness', async () => {
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${gateway.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('exports Prometheus metrics for streams, tokens and upstream errors', async () => {
    await (await chat('gpt-test')).text();
    upstream.handlers.push((_request, response) => {
      sendError(response, 500, 'boom', 'server_error', null);
      return true;
    });
    await (await chat('gpt-test')).text();
    upstream.reset();
    const response = await fetch(`${gateway.url}/metrics`);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    expect(text).toMatch(/sluice_http_requests_total\{route="\/v1\/chat\/completions",status="200",model="gpt-test",provider="upstream"\} \d+/);
    expect(text).toMatch(/sluice_http_requests_total\{route="\/v1\/chat\/completions",status="502",model="gpt-test",provider="upstream"\} 1/);
    expect(text).toMatch(/sluice_active_streams 0/);
    expect(text).toMatch(/sluice_time_to_first_token_seconds_count\{provider="upstream",model="gpt-test"\} \d+/);
    expect(text).toMatch(/sluice_generation_duration_seconds_count\{provider="upstream",model="gpt-test",outcome="completed"\} \d+/);
    expect(text).toMatch(/sluice_tokens_total\{provider="upstream",model="gpt-test",kind="completion"\} \d+/);
    expect(text).toMatch(/sluice_upstream_errors_total\{provider="upstream",code="upstream_error"\} 1/);
  });

  it('echoes a safe x-request-id and replaces an unsafe one', async () => {
    const kept = await chat('demo/sluice-demo', { 'x-request-id': 'trace-abc.123' });
    expect(kept.headers.get('x-request-id')).toBe('trace-abc.123');
    await kept.text();
    const replaced = await chat('demo/sluice-demo', { 'x-request-id': 'x'.repeat(200) });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    await replaced.text();
  });

  it('writes exactly one structured log line per request', async () => {
    const response = await chat('gpt-test', { 'x-request-id': 'log-line-check' });
    await response.text();
    const ofRequest = () => logLines().filter((line) => line['requestId'] === 'log-line-check');
    // Written when the server's response closes, which may come a moment after the client read it.
    await eventually(() => (ofRequest().length > 0 ? true : undefined), 'the request log line');
    // A second line would be written as soon: give it the time to show.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const lines = ofRequest();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ route: '/v1/chat/completions', status: 200, model: 'gpt-test', provider: 'upstream', stream: true, outcome: 'completed' });
    expect(typeof lines[0]?.['durationMs']).toBe('number');
    expect(typeof lines[0]?.['timeToFirstTokenMs']).toBe('number');
    expect(lines[0]?.['usage']).toMatchObject({ promptTokens: 11, estimated: false });
  });
});
