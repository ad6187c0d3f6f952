// A client that goes away must not leave the upstream call running: the upstream sees its
// connection close within 100 ms, streamed or not.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockOpenAi, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, openAiConfig, type TestGateway } from './support/gateway.js';

let upstream: MockOpenAi;
let gateway: TestGateway;

beforeAll(async () => {
  upstream = await startMockOpenAi();
  gateway = await startGateway(openAiConfig(upstream.baseUrl, upstream.apiKey));
});
afterAll(async () => {
  await gateway.close();
  await upstream.close();
});
beforeEach(() => upstream.reset());

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('client disconnect', () => {
  it('aborts a streaming upstream request within 100 ms', async () => {
    upstream.plan = { chunkCount: 100, delayMs: 50 };
    const controller = new AbortController();
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    await reader.read();
    await reader.read();
    const request = upstream.requests[0]!;
    const abortedAt = performance.now();
    controller.abort();
    const closedAt = await request.closed;
    expect(closedAt - abortedAt).toBeLessThan(100);
    await waitFor(() => gateway.app.generations.active.size === 0);
  });

  it('aborts a non-streamed upstream request within 100 ms', async () => {
    upstream.plan = { headDelayMs: 5000 };
    const controller = new AbortController();
    const pending = fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] }),
      signal: controller.signal,
    }).catch(() => undefined);
    await waitFor(() => upstream.requests.length === 1);
    const abortedAt = performance.now();
    controller.abort();
    const closedAt = await upstream.requests[0]!.closed;
    expect(closedAt - abortedAt).toBeLessThan(100);
    await pending;
    await waitFor(() => gateway.app.generations.active.size === 0);
  });
});
