// Fallbacks are tried in order, only before anything of the answer exists.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { startMockOpenAi, sendError, defaultAnswer, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, type TestGateway } from './support/gateway.js';

let primary: MockOpenAi;
let backup: MockOpenAi;
let gateway: TestGateway;

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  primary = await startMockOpenAi({ apiKey: 'sk-primary' });
  backup = await startMockOpenAi({ apiKey: 'sk-backup' });
  const deadPort = await closedPort();
  gateway = await startGateway({
    providers: {
      primary: { type: 'openai', baseUrl: primary.baseUrl, apiKey: 'sk-primary', timeouts: { firstByteMs: 200 } },
      backup: { type: 'openai', baseUrl: backup.baseUrl, apiKey: 'sk-backup' },
      dead: { type: 'openai', baseUrl: `http://127.0.0.1:${deadPort.toString()}/v1`, apiKey: 'k' },
    },
    models: {
      smart: { provider: 'primary', model: 'gpt-4o', fallbacks: ['backup/gpt-4o-mini'] },
      unreachable: { provider: 'dead', model: 'x', fallbacks: ['backup/gpt-4o-mini'] },
    },
  });
});
afterAll(async () => {
  await gateway.close();
  await primary.close();
  await backup.close();
});
beforeEach(() => {
  primary.reset();
  backup.reset();
});

async function chat(model: string, stream = true): Promise<{ status: number; text: string }> {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] }),
  });
  return { status: response.status, text: await response.text() };
}

function contents(text: string): string {
  return text
    .split('\n')
    .filter((line) => line.startsWith('data: {'))
    .map((line) => (JSON.parse(line.slice(6)) as { choices?: { delta: { content?: string } }[] }).choices?.[0]?.delta.content ?? '')
    .join('');
}

function failPrimary(status: number) {
  primary.handlers.push((_request, response) => {
    sendError(response, status, 'nope', 'server_error', null);
    return true;
  });
}

describe('fallbacks', () => {
  it.each([429, 500, 503])('a %i from the primary falls back', async (status) => {
    failPrimary(status);
    const result = await chat('smart');
    expect(result.status).toBe(200);
    expect(contents(result.text)).toBe(defaultAnswer);
    expect(primary.requests).toHaveLength(1);
    expect(backup.requests[0]?.body['model']).toBe('gpt-4o-mini');
  });

  it('a refused connection falls back (non-streamed too)', async () => {
    const result = await chat('unreachable', false);
    expect(result.status).toBe(200);
    expect((JSON.parse(result.text) as { choices: { message: { content: string } }[] }).choices[0]?.message.content).toBe(defaultAnswer);
  });

  it('a first-byte timeout falls back', async () => {
    primary.plan = { headDelayMs: 1000 };
    const result = await chat('smart');
    expect(result.status).toBe(200);
    expect(contents(result.text)).toBe(defaultAnswer);
  });

  it('a 400 does not fall back', async () => {
    failPrimary(400);
    const result = await chat('smart');
    expect(result.status).toBe(400);
    expect(backup.requests).toHaveLength(0);
  });

  it('never falls back once content was produced', async () => {
    primary.handlers.push((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'partial' }, finish_reason: null }] })}\n\n`);
      setTimeout(() => response.socket?.destroy(), 20);
      return true;
    });
    const result = await chat('smart');
    expect(result.status).toBe(200);
    expect(contents(result.text)).toBe('partial');
    expect(result.text).toContain('upstream_stream_interrupted');
    expect(backup.requests).toHaveLength(0);
  });

  it('routes provider/model without an alias', async () => {
    const result = await chat('backup/some-model');
    expect(result.status).toBe(200);
    expect(backup.requests[0]?.body['model']).toBe('some-model');
  });
});
