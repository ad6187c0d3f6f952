// 500 streams at the same time through one gateway: each client gets exactly its own answer and
// nothing of anyone else's. The upstream holds every answer until all 500 requests are in flight,
// so the streams really overlap, then interleaves their chunks; every chunk carries the asker's
// token, so crosstalk, loss or duplication would show in the text.
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockOpenAi, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { chatRequestOptions, parseOpenAiStream } from './support/chat-client.js';
import { contentEvent, finishEvents, openStream, roleEvent } from './support/upstream-chunks.js';

const streamCount = 500;
const chunksPerAnswer = 10;

let upstream: MockOpenAi;
let gateway: TestGateway;
const agent = new Agent({ connections: streamCount + 50 });
let inFlight = 0;
let peakInFlight = 0;

function expectedAnswer(token: string): string {
  return Array.from({ length: chunksPerAnswer }, (_, index) => `${token}:${index.toString()};`).join('');
}

beforeAll(async () => {
  upstream = await startMockOpenAi();
  let releaseAll!: () => void;
  const allArrived = new Promise<void>((resolve) => (releaseAll = resolve));
  // Should the 500 never all arrive, answer anyway after a while: the test then fails on the peak.
  const giveUp = setTimeout(releaseAll, 8000);
  upstream.handlers.push(async (_request, response, body) => {
    const token = (body['messages'] as { content: string }[])[0]?.content ?? '';
    inFlight++;
    peakInFlight = Math.max(peakInFlight, inFlight);
    if (upstream.requests.length >= streamCount) {
      clearTimeout(giveUp);
      releaseAll();
    }
    await allArrived;
    openStream(response);
    response.write(roleEvent);
    for (let index = 0; index < chunksPerAnswer && !response.destroyed; index++) {
      // Each answer has its own chunk id too, as a real upstream's would.
      response.write(contentEvent(`${token}:${index.toString()};`, `chatcmpl-${token}`));
      await new Promise((resolve) => setImmediate(resolve));
    }
    response.end(finishEvents);
    inFlight--;
    return true;
  });
  gateway = await startGateway({
    providers: { upstream: { type: 'openai', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey, maxConnections: streamCount + 50 } },
    models: { 'gpt-test': { provider: 'upstream', model: 'gpt-4o-mini' } },
  });
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
  await agent.close();
});

describe('concurrent streams', () => {
  it(`${streamCount.toString()} simultaneous streams: each client gets exactly its own text`, async () => {
    const answers = await Promise.all(
      Array.from({ length: streamCount }, async (_, index) => {
        const token = `user-${index.toString()}-标记`;
        const response = await request(`${gateway.url}/v1/chat/completions`, chatRequestOptions({ model: 'gpt-test', content: token }, agent));
        return { token, status: response.statusCode, answer: parseOpenAiStream(await response.body.text()) };
      }),
    );

    expect(peakInFlight).toBe(streamCount);
    expect(upstream.requests).toHaveLength(streamCount);
    const chunkIds = new Set<string>();
    for (const { token, status, answer } of answers) {
      expect(status).toBe(200);
      expect(answer.content).toBe(expectedAnswer(token));
      expect(answer.done).toBe(true);
      expect(answer.errorCode).toBeUndefined();
      expect(answer.afterEnd).toBe(0);
      // One id per answer, used by no other answer.
      expect(answer.ids.size).toBe(1);
      for (const id of answer.ids) chunkIds.add(id);
    }
    expect(chunkIds.size).toBe(streamCount);
    expect(gateway.app.generations.active.size).toBe(0);
  });
});
