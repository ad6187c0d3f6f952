// POST /v1/embeddings end to end, with the official `openai` package as the client over real
// sockets, against the mock OpenAI and Azure upstreams (which check credentials as the real ones
// do): float and base64 vectors (passed through), batches of texts and of token ids, the usage row
// with route `embeddings`, the allowlist (403), a provider without embeddings (400
// model_not_supported), errors naming the field, token limits, and a client that leaves
// cancelling the upstream request within a second, and the example of docs/embeddings.md run as
// written.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI, { BadRequestError, PermissionDeniedError, RateLimitError } from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mockEmbedding, mockEmbeddingTokens, startMockOpenAi, type MockOpenAi } from './support/mock-openai.js';
import { startMockAzure, type MockAzure } from './support/mock-azure.js';
import { startMockAnthropic, type MockAnthropic } from './support/mock-anthropic.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { cancelWithinMs, within } from './support/wait.js';
import { runProcess } from './support/guides.js';

let openai: MockOpenAi;
let azure: MockAzure;
let anthropic: MockAnthropic;
let gateway: TestGateway;
let alice: OpenAI;
let aliceKey: string;

beforeAll(async () => {
  openai = await startMockOpenAi();
  azure = await startMockAzure({ deployments: ['chat-prod', 'embed-prod'] });
  anthropic = await startMockAnthropic();
  gateway = await startGateway({
    auth: { mode: 'keys' },
    providers: {
      upstream: { type: 'openai', baseUrl: openai.baseUrl, apiKey: openai.apiKey },
      az: { type: 'azure', endpoint: azure.endpoint, apiKey: azure.apiKey, apiVersion: azure.apiVersion },
      claude: { type: 'anthropic', baseUrl: anthropic.baseUrl, apiKey: anthropic.apiKey },
    },
    models: {
      // $20 per million tokens (far above OpenAI's price, so a few tokens cost whole micro-dollars).
      'embed-small': { provider: 'upstream', model: 'text-embedding-3-small', price: { input: 20, output: 0 } },
      'embed-azure': { provider: 'az', model: 'embed-prod' },
      sonnet: { provider: 'claude', model: 'claude-sonnet-4-5' },
    },
  });
  aliceKey = (await gateway.app.keys.create({ userId: 'alice', role: 'user' })).key;
  alice = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: aliceKey, maxRetries: 0, timeout: 10_000 });
});
afterAll(async () => {
  await gateway?.close();
  await openai?.close();
  await azure?.close();
  await anthropic?.close();
});
beforeEach(() => {
  openai.reset();
  azure.reset();
});

async function lastUsageRow(userId: string) {
  await gateway.app.generations.flushUsage();
  const [row] = await gateway.app.store.usage.recent({ limit: 1, userId });
  return row;
}

describe('embeddings.create', () => {
  it('float: one vector per input of a batch, in order, the provider\'s token count, and a usage row with route embeddings', async () => {
    const inputs = ['The quick brown fox', '你好，世界', 'jumps 🙂'];
    const result = await alice.embeddings.create({ model: 'embed-small', input: inputs, encoding_format: 'float' });
    expect(result.object).toBe('list');
    expect(result.model).toBe('embed-small');
    expect(result.data.map((item) => item.index)).toEqual([0, 1, 2]);
    for (const [index, input] of inputs.entries()) expect(result.data[index]?.embedding).toEqual(mockEmbedding(input));
    const tokens = inputs.reduce((sum, input) => sum + mockEmbeddingTokens(input), 0);
    expect(result.usage).toEqual({ prompt_tokens: tokens, total_tokens: tokens });
    // The upstream got the provider's model name, the batch as sent, and Sluice's credential.
    expect(openai.requests[0]?.path).toBe('/v1/embeddings');
    expect(openai.requests[0]?.body).toEqual({ model: 'text-embedding-3-small', input: inputs, encoding_format: 'float' });
    // The row carries its cost: 20 USD per million tokens is 20 micro-USD per token.
    expect(await lastUsageRow('alice')).toMatchObject({ route: 'embeddings', model: 'embed-small', provider: 'upstream', deployment: 'upstream/text-embedding-3-small', promptTokens: tokens, completionTokens: 0, totalTokens: tokens, estimated: false, outcome: 'completed', costMicros: tokens * 20, currency: 'USD' });
  });

  it('base64: the provider\'s encoding passes through unchanged, and the SDK decodes it to the same floats', async () => {
    // The SDK asks for base64 by default and decodes it itself.
    const decoded = await alice.embeddings.create({ model: 'embed-small', input: 'hello' });
    expect(openai.requests[0]?.body['encoding_format']).toBe('base64');
    expect(decoded.data[0]?.embedding).toEqual(mockEmbedding('hello'));
    // Asked explicitly, the string comes back as the provider sent it.
    const raw = await alice.embeddings.create({ model: 'embed-small', input: 'hello', encoding_format: 'base64' });
    const text = raw.data[0]?.embedding as unknown as string;
    expect(typeof text).toBe('string');
    expect(text).toBe(Buffer.from(new Float32Array(mockEmbedding('hello')).buffer).toString('base64'));
  });

  it('token arrays, one or several, and dimensions', async () => {
    const one = await alice.embeddings.create({ model: 'embed-small', input: [101, 2023, 102], encoding_format: 'float', dimensions: 4 });
    expect(one.data).toHaveLength(1);
    expect(one.data[0]?.embedding).toEqual(mockEmbedding([101, 2023, 102], 4));
    const several = await alice.embeddings.create({ model: 'embed-small', input: [[1, 2], [3, 4, 5]], encoding_format: 'float' });
    expect(several.data.map((item) => item.embedding)).toEqual([mockEmbedding([1, 2]), mockEmbedding([3, 4, 5])]);
    expect(several.usage.prompt_tokens).toBe(5);
    expect(openai.requests[0]?.body).toMatchObject({ input: [101, 2023, 102], dimensions: 4 });
  });

  it('Azure: the deployment\'s /embeddings with api-key and api-version, no Authorization header', async () => {
    const result = await alice.embeddings.create({ model: 'embed-azure', input: ['a', 'b'], encoding_format: 'float' });
    expect(result.data.map((item) => item.embedding)).toEqual([mockEmbedding('a'), mockEmbedding('b')]);
    expect(azure.requests[0]?.path).toBe('/openai/deployments/embed-prod/embeddings');
    expect(azure.requests[0]?.query.get('api-version')).toBe(azure.apiVersion);
    expect(azure.requests[0]?.headers['api-key']).toBe(azure.apiKey);
    expect(azure.requests[0]?.headers.authorization).toBeUndefined();
  });
});

describe('refusals', () => {
  it('a model of a provider without embeddings is 400 model_not_supported, naming the model field', async () => {
    const error = await alice.embeddings.create({ model: 'sonnet', input: 'hi' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).code).toBe('model_not_supported');
    expect((error as BadRequestError).param).toBe('model');
    expect(await lastUsageRow('alice')).toMatchObject({ route: 'embeddings', outcome: 'refused', errorCode: 'model_not_supported' });
  });

  it('a key whose allowlist leaves the model out is 403 model_not_allowed, and the upstream is never called', async () => {
    const { key } = await gateway.app.keys.create({ userId: 'carol', role: 'user', models: ['sonnet'] });
    const carol = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 });
    const error = await carol.embeddings.create({ model: 'embed-small', input: 'hi' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect((error as PermissionDeniedError).code).toBe('model_not_allowed');
    expect(openai.requests).toHaveLength(0);
  });

  it('a bad field is 400 naming it', async () => {
    const empty = await alice.embeddings.create({ model: 'embed-small', input: [] }).catch((caught: unknown) => caught);
    expect((empty as BadRequestError).param).toBe('input');
    const format = await alice.embeddings.create({ model: 'embed-small', input: 'x', encoding_format: 'hex' as 'float' }).catch((caught: unknown) => caught);
    expect((format as BadRequestError).param).toBe('encoding_format');
    expect(openai.requests).toHaveLength(0);
  });

  it('tokens count against the key\'s tokens-per-minute limit like chat: the next request is 429', async () => {
    const { key } = await gateway.app.keys.create({ userId: 'dave', role: 'user', limits: { tokensPerMinute: 10 } });
    const dave = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 });
    await dave.embeddings.create({ model: 'embed-small', input: 'a text long enough to use up the bucket of ten tokens', encoding_format: 'float' });
    const error = await dave.embeddings.create({ model: 'embed-small', input: 'more', encoding_format: 'float' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RateLimitError);
    expect((error as RateLimitError).code).toBe('rate_limited');
  });

  it('the provider\'s own refusal reaches the client as an OpenAI error', async () => {
    openai.handlers.push((_request, response) => {
      response.writeHead(400, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: { message: "This model's maximum context length is 8192 tokens", type: 'invalid_request_error', param: null, code: null } }));
      return true;
    });
    const error = await alice.embeddings.create({ model: 'embed-small', input: 'x' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).code).toBe('upstream_bad_request');
    expect((error as BadRequestError).message).toContain('maximum context length');
  });
});

describe('cancellation', () => {
  it('a client that leaves ends the upstream request within a second, and the row says cancelled', async () => {
    openai.plan = { headDelayMs: 5_000 };
    const controller = new AbortController();
    const request = fetch(`${gateway.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${aliceKey}` },
      body: JSON.stringify({ model: 'embed-small', input: 'slow' }),
      signal: controller.signal,
    }).catch(() => undefined);
    const deadline = performance.now() + 2_000;
    while (openai.requests.length === 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(openai.requests).toHaveLength(1);
    const abortedAt = performance.now();
    controller.abort();
    await request;
    const closedAt = await within(openai.requests[0]!.closed, 2_000, 'the upstream embeddings request to close');
    expect(closedAt - abortedAt).toBeLessThan(cancelWithinMs);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The provider may still bill it: its estimated tokens are charged, at the model's price.
    const row = await lastUsageRow('alice');
    expect(row).toMatchObject({ route: 'embeddings', outcome: 'cancelled', errorCode: 'cancelled', estimated: true, currency: 'USD' });
    expect(row?.promptTokens).toBeGreaterThan(0);
    expect(row?.costMicros).toBe((row?.promptTokens ?? 0) * 20);
  });
});

describe('docs/embeddings.md', () => {
  const repository = new URL('..', import.meta.url).pathname;
  let demo: TestGateway;
  let key: string;
  let directory: string;
  beforeAll(async () => {
    demo = await startGateway({ auth: { mode: 'keys' }, providers: { openai: { type: 'openai', baseUrl: openai.baseUrl, apiKey: openai.apiKey } }, models: { 'text-embedding-3-small': { provider: 'openai', model: 'text-embedding-3-small' } } });
    key = (await demo.app.keys.create({ userId: 'doc-reader', role: 'user' })).key;
    // Inside the repository, so `import 'openai'` resolves from its node_modules.
    mkdirSync(join(repository, 'node_modules/.cache'), { recursive: true });
    directory = mkdtempSync(join(repository, 'node_modules/.cache/sluice-embeddings-doc-'));
  });
  afterAll(async () => {
    rmSync(directory, { recursive: true, force: true });
    await demo?.close();
  });

  it('embeddings-node: the example runs as written: a float batch, then one base64 vector decoded', async () => {
    const markdown = readFileSync(join(repository, 'docs/embeddings.md'), 'utf8');
    const blocks = [...markdown.matchAll(/<!-- test: embeddings-node -->\s*\n```js\n([\s\S]*?)\n```/g)];
    expect(blocks).toHaveLength(1);
    const file = join(directory, 'embeddings.mjs');
    writeFileSync(file, `${blocks[0]?.[1] ?? ''}\n`);
    const result = await runProcess(process.execPath, [file], { env: { SLUICE_URL: demo.url, SLUICE_KEY: key }, timeoutMs: 20_000 });
    expect(result.code, result.stderr).toBe(0);
    const tokens = mockEmbeddingTokens('The quick brown fox') + mockEmbeddingTokens('敏捷的棕色狐狸');
    expect(result.stdout.split('\n').slice(0, 4)).toEqual(['0: 8 dimensions', '1: 8 dimensions', `[${tokens.toString()} tokens]`, 'base64 decoded: 8 dimensions']);
    expect(openai.requests.map((request) => request.body['encoding_format'])).toEqual(['float', 'base64']);
  });
});
