// A mock OpenAI-compatible upstream on 127.0.0.1:0 that behaves as the real API does where Sluice
// depends on it: it checks the Bearer key (401 invalid_api_key otherwise), validates the body,
// streams chat.completion.chunk events (usage chunk only with include_usage, then [DONE]), answers
// POST /v1/embeddings with deterministic vectors (`float` arrays, or little-endian float32 as
// `base64`, as OpenAI encodes them), and records every request and when its connection closed.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
  receivedAt: number;
  /** Resolves with the time the client's connection (or request) closed. */
  closed: Promise<number>;
}

export interface StreamPlan {
  /** The answer; cut into `chunkCount` pieces by code point unless `pieces` is given. */
  text?: string;
  pieces?: string[];
  chunkCount?: number;
  /** Delay before each content chunk. */
  delayMs?: number;
  /** Delay before the response head. */
  headDelayMs?: number;
  finishReason?: string;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number; prompt_tokens_details?: { cached_tokens: number } };
  /** Omit the final `data: [DONE]`. */
  omitDone?: boolean;
}

/** Custom behaviour for one request; return true if it answered. */
export type MockHandler = (request: IncomingMessage, response: ServerResponse, body: Record<string, unknown>) => boolean | Promise<boolean>;

export interface MockOpenAi {
  /** Base URL including /v1, as a provider's `baseUrl`. */
  baseUrl: string;
  port: number;
  apiKey: string;
  requests: RecordedRequest[];
  /** The default plan for streamed and non-streamed answers. */
  plan: StreamPlan;
  /** Handlers tried in order before the default behaviour; cleared with reset(). */
  handlers: MockHandler[];
  reset(): void;
  close(): Promise<void>;
}

export const defaultAnswer = 'Hello 你好, streaming works 🙂 — tokens arrive one by one.';

export async function startMockOpenAi(options: { apiKey?: string } = {}): Promise<MockOpenAi> {
  const apiKey = options.apiKey ?? 'sk-test-upstream-key-0123456789';
  const sockets = new Set<Socket>();
  const mock: MockOpenAi = {
    baseUrl: '',
    port: 0,
    apiKey,
    requests: [],
    plan: {},
    handlers: [],
    reset() {
      mock.requests.length = 0;
      mock.plan = {};
      mock.handlers = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };

  const server: Server = createServer((request, response) => {
    void handle(request, response);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const closed = new Promise<number>((resolve) => response.once('close', () => resolve(performance.now())));
    const chunks: Buffer[] = [];
    for await (const chunk of request as AsyncIterable<Buffer>) chunks.push(chunk);
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch {
      return sendError(response, 400, 'We could not parse the JSON body of your request.', 'invalid_request_error', null);
    }
    mock.requests.push({ path: request.url ?? '', headers: request.headers, body, receivedAt: performance.now(), closed });

    if (request.headers.authorization !== `Bearer ${apiKey}`) {
      const shown = String(request.headers.authorization ?? '').replace(/^Bearer /, '');
      return sendError(response, 401, `Incorrect API key provided: ${shown}. You can find your API key at https://platform.openai.com/account/api-keys.`, 'invalid_request_error', 'invalid_api_key');
    }
    if (request.method === 'POST' && request.url?.endsWith('/embeddings')) {
      for (const handler of mock.handlers) if (await handler(request, response, body)) return;
      if (mock.plan.headDelayMs) await sleep(mock.plan.headDelayMs);
      if (response.destroyed) return;
      return answerEmbeddings(response, body);
    }
    if (request.method !== 'POST' || !request.url?.endsWith('/chat/completions')) return sendError(response, 404, 'Unknown route', 'invalid_request_error', 'unknown_url');
    if (typeof body['model'] !== 'string' || !Array.isArray(body['messages'])) {
      return sendError(response, 400, "'model' and 'messages' are required", 'invalid_request_error', null);
    }
    for (const handler of mock.handlers) if (await handler(request, response, body)) return;

    const plan = mock.plan;
    const text = plan.text ?? defaultAnswer;
    const pieces = plan.pieces ?? splitText(text, plan.chunkCount ?? 8);
    const usage = plan.usage ?? { prompt_tokens: 11, completion_tokens: pieces.length, total_tokens: 11 + pieces.length };
    const base = { id: 'chatcmpl-upstream123', created: 1_700_000_000, model: String(body['model']), system_fingerprint: 'fp_mock' };
    if (plan.headDelayMs) await sleep(plan.headDelayMs);

    if (body['stream'] !== true) {
      const json = JSON.stringify({
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: pieces.join(''), refusal: null }, logprobs: null, finish_reason: plan.finishReason ?? 'stop' }],
        usage,
      });
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(json);
      return;
    }
    const includeUsage = (body['stream_options'] as { include_usage?: boolean } | undefined)?.include_usage === true;
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices, ...(includeUsage ? { usage: null } : {}), ...extra })}\n\n`;
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    response.write(chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]));
    for (const piece of pieces) {
      if (plan.delayMs) await sleep(plan.delayMs);
      if (response.destroyed) return;
      response.write(chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }]));
    }
    response.write(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: plan.finishReason ?? 'stop' }]));
    if (includeUsage) response.write(chunk([], { usage }));
    response.end(plan.omitDone ? undefined : 'data: [DONE]\n\n');
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  mock.port = (server.address() as AddressInfo).port;
  mock.baseUrl = `http://127.0.0.1:${mock.port.toString()}/v1`;
  return mock;
}

/** How many dimensions the mock's vectors have unless `dimensions` asks for fewer. */
export const mockEmbeddingDimensions = 8;

/** The mock's vector for one input: deterministic, from the input's text (or token ids). */
export function mockEmbedding(input: string | readonly number[], dimensions = mockEmbeddingDimensions): number[] {
  const text = typeof input === 'string' ? input : input.join(',');
  let seed = 2166136261;
  for (const character of text) seed = Math.imul(seed ^ (character.codePointAt(0) ?? 0), 16777619) >>> 0;
  const vector: number[] = [];
  for (let index = 0; index < dimensions; index += 1) {
    seed = Math.imul(seed ^ (seed >>> 15), 2246822507) >>> 0;
    // Float32-exact values, so a base64 round trip gives the same numbers.
    vector.push(Math.fround((seed % 2000) / 1000 - 1));
  }
  return vector;
}

/** The tokens the mock says an input had: one per three characters, or the token ids' count. */
export function mockEmbeddingTokens(input: string | readonly number[]): number {
  return typeof input === 'string' ? Math.ceil(input.length / 3) : input.length;
}

/** OpenAI's /v1/embeddings answer, with its validation of `input` and `encoding_format`. */
export function answerEmbeddings(response: ServerResponse, body: Record<string, unknown>, model = String(body['model'])): void {
  const input = body['input'];
  const inputs: (string | number[])[] =
    typeof input === 'string' ? [input] : Array.isArray(input) && input.length > 0 && input.every((item) => typeof item === 'number') ? [input] : Array.isArray(input) ? (input as (string | number[])[]) : [];
  if (typeof body['model'] !== 'string' || inputs.length === 0 || inputs.some((item) => (typeof item === 'string' ? item === '' : !Array.isArray(item) || item.length === 0))) {
    return sendError(response, 400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", 'invalid_request_error', null);
  }
  const format = body['encoding_format'] ?? 'float';
  if (format !== 'float' && format !== 'base64') return sendError(response, 400, `Invalid value: '${JSON.stringify(format)}'. Supported values are: 'float' and 'base64'.`, 'invalid_request_error', 'invalid_value');
  const dimensions = typeof body['dimensions'] === 'number' ? body['dimensions'] : mockEmbeddingDimensions;
  const tokens = inputs.reduce((sum, item) => sum + mockEmbeddingTokens(item), 0);
  const data = inputs.map((item, index) => {
    const vector = mockEmbedding(item, dimensions);
    const embedding = format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector;
    return { object: 'embedding', index, embedding };
  });
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } }));
}

export function sendError(response: ServerResponse, status: number, message: string, type: string, code: string | null, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(JSON.stringify({ error: { message, type, param: null, code } }));
}

export function splitText(text: string, count: number): string[] {
  const codePoints = [...text];
  const size = Math.max(1, Math.ceil(codePoints.length / count));
  const pieces: string[] = [];
  for (let index = 0; index < codePoints.length; index += size) pieces.push(codePoints.slice(index, index + size).join(''));
  return pieces;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
