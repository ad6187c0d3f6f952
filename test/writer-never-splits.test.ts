// The writer sends whole events: a client that decodes every network chunk on its own (as naive
// hand-written clients do) still never sees a broken multi-byte character.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
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

describe('writes hold whole characters', () => {
  it('per-chunk decoding of the response never yields U+FFFD', async () => {
    const text = '流式传输中文和表情符号🙂🚀✨，每个字都要完整。'.repeat(400);
    // Upstream pieces cut at odd code-point counts, so upstream reads split characters often.
    // A small delay keeps each write under one TCP segment, so only the writer could split a character.
    upstream.plan = { text, chunkCount: 997, delayMs: 1 };
    const response = await request(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    let naive = '';
    let reads = 0;
    for await (const chunk of response.body) {
      naive += new TextDecoder().decode(chunk as Buffer);
      reads++;
    }
    expect(reads).toBeGreaterThan(1);
    expect(naive).not.toContain('\uFFFD');
    const content = naive
      .split('\n')
      .filter((line) => line.startsWith('data: {'))
      .map((line) => (JSON.parse(line.slice(6)) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '')
      .join('');
    expect(content).toBe(text);
  });
});
