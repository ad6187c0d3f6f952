// A client that goes away must not leave the upstream call running: the upstream sees its request
// close within a second of the client's abort (streamed mid-answer, streamed before the first token,
// or not streamed), the generation ends as cancelled and leaves the gateway's active set, and
// another client's answer from the same upstream is untouched (the bound: test/support/wait.ts).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Generation } from '../src/relay/generation.js';
import { startMockOpenAi, defaultAnswer, type MockOpenAi, type RecordedRequest } from './support/mock-openai.js';
import { startGateway, openAiConfig, type TestGateway } from './support/gateway.js';
import { postChat, readStream } from './support/chat-client.js';
import { cancelWithinMs, waitFor, within } from './support/wait.js';

let upstream: MockOpenAi;
let gateway: TestGateway;

beforeAll(async () => {
  upstream = await startMockOpenAi();
  gateway = await startGateway(openAiConfig(upstream.baseUrl, upstream.apiKey));
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});
beforeEach(() => upstream.reset());

/** The one generation running now. */
function runningGeneration(): Generation {
  const running = [...gateway.app.generations.active];
  expect(running).toHaveLength(1);
  return running[0]!;
}

/** The upstream request whose user message was `content`. */
function upstreamRequestFor(content: string): RecordedRequest {
  const found = upstream.requests.find((request) => (request.body['messages'] as { content: string }[])[0]?.content === content);
  if (!found) throw new Error(`no upstream request for "${content}"`);
  return found;
}

/** Reads until a chunk with non-empty content has arrived: the answer is under way. */
async function readUntilContent(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  const decoder = new TextDecoder();
  let text = '';
  while (!/"delta":\{"content":"[^"]/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error('the stream ended before any content');
    text += decoder.decode(value, { stream: true });
  }
}

/** Aborts, then measures how long the upstream took to see its request close. */
async function abortAndMeasure(controller: AbortController, upstreamRequest: RecordedRequest): Promise<number> {
  const abortedAt = performance.now();
  controller.abort();
  const closedAt = await within(upstreamRequest.closed, 2000, 'the upstream request to close');
  return closedAt - abortedAt;
}

async function expectCancelledAndGone(generation: Generation): Promise<void> {
  const summary = await within(generation.done, 1000, 'the generation to end');
  expect(summary.outcome).toBe('cancelled');
  expect(summary.errorCode).toBe('cancelled');
  await waitFor(() => gateway.app.generations.active.size === 0, 'no active generation');
}

describe('a client that goes away cancels the upstream request', () => {
  it('streamed, mid-answer: the upstream request closes within a second', async () => {
    upstream.plan = { chunkCount: 100, delayMs: 50 }; // one character every 50 ms: about 3 s in all
    const controller = new AbortController();
    const response = await postChat(gateway.url, { model: 'gpt-test', signal: controller.signal });
    expect(response.status).toBe(200);
    await readUntilContent(response.body!.getReader());
    const generation = runningGeneration();

    expect(await abortAndMeasure(controller, upstream.requests[0]!)).toBeLessThan(cancelWithinMs);
    await expectCancelledAndGone(generation);
  });

  it('streamed, before the first token: the upstream request closes within a second', async () => {
    upstream.handlers.push(() => true); // takes the request and never answers
    const controller = new AbortController();
    // The gateway holds its head until the answer exists, so the client is still waiting for it.
    const pending = postChat(gateway.url, { model: 'gpt-test', signal: controller.signal }).catch((error: unknown) => error);
    await waitFor(() => upstream.requests.length === 1, 'the upstream request');
    const generation = runningGeneration();

    expect(await abortAndMeasure(controller, upstream.requests[0]!)).toBeLessThan(cancelWithinMs);
    expect(await pending).toBeInstanceOf(Error);
    await expectCancelledAndGone(generation);
  });

  it('not streamed, while waiting for the answer: the upstream request closes within a second', async () => {
    upstream.handlers.push(() => true);
    const controller = new AbortController();
    const pending = postChat(gateway.url, { model: 'gpt-test', stream: false, signal: controller.signal }).catch((error: unknown) => error);
    await waitFor(() => upstream.requests.length === 1, 'the upstream request');
    expect(upstream.requests[0]!.body['stream']).toBe(false);
    const generation = runningGeneration();

    expect(await abortAndMeasure(controller, upstream.requests[0]!)).toBeLessThan(cancelWithinMs);
    expect(await pending).toBeInstanceOf(Error);
    await expectCancelledAndGone(generation);
  });

  it('cancels only the client that left: another answer from the same upstream completes exactly', async () => {
    upstream.plan = { chunkCount: 100, delayMs: 30 }; // one character every 30 ms: about 1.7 s in all
    const leaving = new AbortController();
    const left = await postChat(gateway.url, { model: 'gpt-test', content: 'leaving', signal: leaving.signal });
    const staying = postChat(gateway.url, { model: 'gpt-test', content: 'staying' }).then(readStream);
    await readUntilContent(left.body!.getReader());
    await waitFor(() => upstream.requests.length === 2, 'both upstream requests');

    expect(await abortAndMeasure(leaving, upstreamRequestFor('leaving'))).toBeLessThan(cancelWithinMs);
    const answer = await within(staying, 5000, 'the other answer');
    expect(answer.content).toBe(defaultAnswer);
    expect(answer.done).toBe(true);
    expect(answer.errorCode).toBeUndefined();
    await waitFor(() => gateway.app.generations.active.size === 0, 'no active generation');
  });
});
