// The azure provider end to end, through the OpenAI-compatible route and the official openai
// package as the client, against a mock resource that checks the api-key header, the api-version
// query and the deployment in the path as Azure does.
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { azureAnswerPieces, startMockAzure, type MockAzure } from './support/mock-azure.js';
import { startGateway, type TestGateway } from './support/gateway.js';

let upstream: MockAzure;
let gateway: TestGateway;
let client: OpenAI;

const wrongKey = 'azure-wrong-key-9876543210';

beforeAll(async () => {
  upstream = await startMockAzure({ deployments: ['chat-prod', 'gpt-4o-mini'] });
  gateway = await startGateway({
    providers: {
      azure: { type: 'azure', endpoint: upstream.endpoint, apiKey: upstream.apiKey, deployments: { 'gpt-4o': 'chat-prod' } },
      wrongkey: { type: 'azure', endpoint: upstream.endpoint, apiKey: wrongKey },
      oldversion: { type: 'azure', endpoint: upstream.endpoint, apiKey: upstream.apiKey, apiVersion: '2023-05-15' },
    },
    models: { gpt4o: { provider: 'azure', model: 'gpt-4o' } },
  });
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await gateway.close();
  await upstream.close();
});
beforeEach(() => upstream.reset());

describe('azure provider', () => {
  it('streams the exact text and usage from the mapped deployment, keyed by api-key and api-version', async () => {
    const stream = await client.chat.completions.create({ model: 'gpt4o', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Hi' }] });
    let text = '';
    let finish: string | null | undefined;
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(azureAnswerPieces.join(''));
    expect(finish).toBe('stop');
    expect(usage).toEqual({ prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 });
    const sent = upstream.requests[0]!;
    expect(sent.path).toBe('/openai/deployments/chat-prod/chat/completions');
    expect(sent.query.get('api-version')).toBe('2024-10-21');
    expect(sent.headers['api-key']).toBe(upstream.apiKey);
    expect(sent.headers.authorization).toBeUndefined();
    expect(sent.body).toMatchObject({ messages: [{ role: 'user', content: 'Hi' }], stream: true, stream_options: { include_usage: true } });
  });

  it('answers without streaming', async () => {
    upstream.plan = { finishReason: 'length' };
    const completion = await client.chat.completions.create({ model: 'gpt4o', messages: [{ role: 'user', content: 'Hi' }] });
    expect(completion.choices[0]?.message.content).toBe(azureAnswerPieces.join(''));
    expect(completion.choices[0]?.finish_reason).toBe('length');
    expect(completion.usage).toMatchObject({ prompt_tokens: 9, completion_tokens: 3 });
    expect(upstream.requests[0]?.body).toMatchObject({ stream: false });
  });

  it('uses the model name as the deployment when none is mapped', async () => {
    const completion = await client.chat.completions.create({ model: 'azure/gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] });
    expect(completion.choices[0]?.message.content).toBe(azureAnswerPieces.join(''));
    expect(upstream.requests[0]?.path).toBe('/openai/deployments/gpt-4o-mini/chat/completions');
  });

  it('a wrong key is refused as upstream_auth_failed (502), without the key in the answer or the logs', async () => {
    const error: unknown = await client.chat.completions.create({ model: 'wrongkey/chat-prod', messages: [{ role: 'user', content: 'Hi' }] }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('upstream_auth_failed');
    expect(upstream.requests[0]?.headers['api-key']).toBe(wrongKey);
    expect(String((error as Error).message)).not.toContain(wrongKey);
    expect(gateway.logs.join('')).not.toContain(wrongKey);
  });

  it('a wrong api-version is refused by the resource, and a streamed request gets the error before any chunk', async () => {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'oldversion/chat-prod', stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
    });
    expect(upstream.requests[0]?.query.get('api-version')).toBe('2023-05-15');
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('upstream_model_not_found');
  });

  it('an unknown deployment is upstream_model_not_found with Azure\'s message', async () => {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'azure/no-such-deployment', messages: [{ role: 'user', content: 'Hi' }] }),
    });
    expect(response.status).toBe(404);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('upstream_model_not_found');
    expect(body.error.message).toContain('The API deployment for this resource does not exist');
  });

  it('lists the mapped models in GET /v1/models', async () => {
    const ids = (await client.models.list()).data.map((model) => model.id);
    expect(ids).toContain('azure/gpt-4o');
  });
});
