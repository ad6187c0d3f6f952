// A mock Azure OpenAI resource on 127.0.0.1:0 that enforces what the real one does where Sluice
// depends on it: the key in the `api-key` header (401 with Azure's error body otherwise), the
// `api-version` query exactly (404 "Resource not found" otherwise, as Azure answers an unknown
// version), and the deployment in the path (404 DeploymentNotFound). It streams chat.completion
// chunks the way Azure does (a first chunk with empty choices and prompt_filter_results, content
// filter results on every choice, a usage chunk only with include_usage, then [DONE]), answers
// a deployment's /embeddings as OpenAI does (same checks of key, version and deployment), and
// records every request.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { answerEmbeddings } from './mock-openai.js';

export interface AzureRequestRecord {
  /** The path without the query, e.g. /openai/deployments/chat-prod/chat/completions. */
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

export interface AzurePlan {
  pieces?: string[];
  finishReason?: string;
}

export interface MockAzure {
  /** The resource endpoint, as a provider's `endpoint`. */
  endpoint: string;
  apiKey: string;
  apiVersion: string;
  /** Deployment names the resource has. */
  deployments: readonly string[];
  requests: AzureRequestRecord[];
  plan: AzurePlan;
  reset(): void;
  close(): Promise<void>;
}

export const azureAnswerPieces = ['Hello', ' from', ' Azure 你好 🙂'];

const contentFilterResults = {
  hate: { filtered: false, severity: 'safe' },
  self_harm: { filtered: false, severity: 'safe' },
  sexual: { filtered: false, severity: 'safe' },
  violence: { filtered: false, severity: 'safe' },
};

export interface MockAzureOptions {
  apiKey?: string;
  apiVersion?: string;
  deployments?: readonly string[];
}

export async function startMockAzure(options: MockAzureOptions = {}): Promise<MockAzure> {
  const sockets = new Set<Socket>();
  const mock: MockAzure = {
    endpoint: '',
    apiKey: options.apiKey ?? 'azure-test-key-0123456789abcdef',
    apiVersion: options.apiVersion ?? '2024-10-21',
    deployments: options.deployments ?? ['chat-prod'],
    requests: [],
    plan: {},
    reset() {
      mock.requests.length = 0;
      mock.plan = {};
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  const fail = (response: ServerResponse, status: number, code: string, message: string) => {
    response.writeHead(status, { 'content-type': 'application/json', 'apim-request-id': 'mock-request-id' });
    response.end(JSON.stringify({ error: { code, message } }));
  };

  const server = createServer((request, response) => {
    void (async () => {
      const parts: Buffer[] = [];
      for await (const part of request as AsyncIterable<Buffer>) parts.push(part);
      const url = new URL(request.url ?? '/', 'http://mock');
      const body = JSON.parse(Buffer.concat(parts).toString('utf8') || '{}') as Record<string, unknown>;
      mock.requests.push({ path: url.pathname, query: url.searchParams, headers: request.headers, body });

      if (request.headers['api-key'] !== mock.apiKey) {
        return fail(response, 401, '401', 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.');
      }
      if (url.searchParams.get('api-version') !== mock.apiVersion) return fail(response, 404, '404', 'Resource not found');
      const route = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/.exec(url.pathname);
      if (request.method !== 'POST' || !route) return fail(response, 404, '404', 'Resource not found');
      const deployment = decodeURIComponent(route[1] ?? '');
      if (!mock.deployments.includes(deployment)) {
        return fail(response, 404, 'DeploymentNotFound', 'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.');
      }
      // Azure needs no `model` in the body: the deployment is the model.
      if (route[2] === 'embeddings') return answerEmbeddings(response, { model: deployment, ...body }, 'text-embedding-3-small');
      if (!Array.isArray(body['messages']) || body['messages'].length === 0) return fail(response, 400, 'BadRequest', "'messages' is a required property");

      const pieces = mock.plan.pieces ?? azureAnswerPieces;
      const finishReason = mock.plan.finishReason ?? 'stop';
      const usage = { prompt_tokens: 9, completion_tokens: pieces.length, total_tokens: 9 + pieces.length };
      // Azure answers with the model behind the deployment, not the deployment's name.
      const base = { id: 'chatcmpl-azure123', created: 1_700_000_000, model: 'gpt-4o-2024-08-06', system_fingerprint: 'fp_azure' };
      if (body['stream'] !== true) {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({
            ...base,
            object: 'chat.completion',
            choices: [{ index: 0, message: { role: 'assistant', content: pieces.join('') }, finish_reason: finishReason, content_filter_results: contentFilterResults }],
            prompt_filter_results: [{ prompt_index: 0, content_filter_results: contentFilterResults }],
            usage,
          }),
        );
        return;
      }
      const includeUsage = (body['stream_options'] as { include_usage?: boolean } | undefined)?.include_usage === true;
      const send = (data: unknown) => response.write(`data: ${JSON.stringify(data)}\n\n`);
      const chunk = (choice: Record<string, unknown>) => ({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, logprobs: null, ...choice }], ...(includeUsage ? { usage: null } : {}) });
      response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
      send({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: [{ prompt_index: 0, content_filter_results: contentFilterResults }] });
      send(chunk({ delta: { role: 'assistant', content: '' }, finish_reason: null, content_filter_results: {} }));
      for (const piece of pieces) {
        if (response.destroyed) return;
        send(chunk({ delta: { content: piece }, finish_reason: null, content_filter_results: contentFilterResults }));
      }
      send(chunk({ delta: {}, finish_reason: finishReason, content_filter_results: {} }));
      if (includeUsage) send({ ...base, object: 'chat.completion.chunk', choices: [], usage });
      response.end('data: [DONE]\n\n');
    })();
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  mock.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port.toString()}`;
  return mock;
}
