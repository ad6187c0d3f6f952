// 500 simultaneous streams through one gateway: each client gets exactly its own answer.
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockOpenAi, sleep, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, openAiConfig, type TestGateway } from './support/gateway.js';

let upstream: MockOpenAi;
let gateway: TestGateway;
const agent = new Agent({ connections: 600 });

beforeAll(async () => {
  upstream = await startMockOpenAi();
  // Every chunk of an answer carries the asker's token, so crosstalk would show.
  upstream.handlers.push(async (_request, response, body) => {
    const messages = body['messages'] as { content: string }[];
    const token = messages[0]?.content ?? '';
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    for (let index = 0; index < 10; index++) {
      response.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: `${token}:${index.toString()};` }, finish_reason: null }] })}\n\n`);
      await sleep(5);
    }
    response.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
    response.end('data: [DONE]\n\n');
    return true;
  });
  gateway = await startGateway(openAiConfig(upstream.baseUrl, upstream.apiKey, { providers: { upstream: { type: 'openai', baseUrl: upstream.baseUrl, apiKey: upstream.apiKey, maxConnections: 600 } } }));
});
afterAll(async () => {
  await gateway.close();
  await upstream.close();
  await agent.close();
});

describe('concurrency', () => {
  it('500 concurrent streams, no crosstalk', async () => {
    const count = 500;
    const results = await Promise.all(
      Array.from({ length: count }, async (_, index) => {
        const token = `user-${index.toString()}-标记`;
        const response = await request(`${gateway.url}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: token }] }),
        });
        const text = await response.body.text();
        const content = text
          .split('\n')
          .filter((line) => line.startsWith('data: {'))
          .map((line) => (JSON.parse(line.slice(6)) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '')
          .join('');
        return { token, content, done: text.includes('data: [DONE]') };
      }),
    );
    for (const { token, content, done } of results) {
      expect(done).toBe(true);
      expect(content).toBe(Array.from({ length: 10 }, (_, index) => `${token}:${index.toString()};`).join(''));
    }
    expect(upstream.requests).toHaveLength(count);
  });
});
