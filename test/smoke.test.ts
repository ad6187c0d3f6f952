import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockOpenAi, defaultAnswer, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, openAiConfig, readDataLines, type TestGateway } from './support/gateway.js';

describe('smoke: the OpenAI-compatible route against a mock upstream', () => {
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

  it('streams the upstream text exactly', async () => {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(response.status).toBe(200);
    const lines = await readDataLines(response);
    expect(lines.at(-1)).toBe('[DONE]');
    const text = lines
      .slice(0, -1)
      .map((line) => (JSON.parse(line) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '')
      .join('');
    expect(text).toBe(defaultAnswer);
  });
});
