// An OpenAI-compatible upstream with several deployments and keys, failing on command, for the
// pool tests. Each deployment is a base URL of its own (`baseUrlOf('a')` = …/a/v1, one provider
// entry each); every deployment accepts the same keys, checked as the real API checks them (401
// invalid_api_key for any other). Commands: a deployment answers a status (with Retry-After) for
// its next N requests, a key is refused (401) from now on, a deployment answers slowly or drops
// its stream after the first token. It counts what each deployment and each key served.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { sendError } from './mock-openai.js';
import { contentEvent, finishEvents, openStream, roleEvent } from './upstream-chunks.js';

export interface DeploymentBehaviour {
  /** Answer this status to the next `times` requests (default: every request until cleared). */
  failStatus?: number;
  times?: number;
  /** Retry-After header (seconds) sent with the failure. */
  retryAfterSeconds?: number;
  /** Milliseconds between the chunks of the answer. */
  chunkDelayMs?: number;
  /** Send one token, then drop the connection. */
  dropAfterFirstToken?: boolean;
}

export interface MockPoolUpstream {
  /** The `baseUrl` of a provider entry for deployment `name`. */
  baseUrlOf(name: string): string;
  readonly keys: readonly string[];
  /** Requests answered 200 (or started streaming), by deployment. */
  readonly served: Map<string, number>;
  /** Every request received, by deployment, with the key it carried. */
  readonly received: { deployment: string; key: string }[];
  /** Requests in progress now, by deployment. */
  readonly inProgress: Map<string, number>;
  setBehaviour(deployment: string, behaviour: DeploymentBehaviour): void;
  /** The provider refuses `key` with 401 from now on (a revoked key). */
  revokeKey(key: string): void;
  reset(): void;
  close(): Promise<void>;
}

export async function startMockPoolUpstream(keys: readonly string[]): Promise<MockPoolUpstream> {
  const sockets = new Set<Socket>();
  const behaviours = new Map<string, DeploymentBehaviour>();
  const revoked = new Set<string>();
  const served = new Map<string, number>();
  const inProgress = new Map<string, number>();
  const received: { deployment: string; key: string }[] = [];
  const bump = (map: Map<string, number>, key: string, by: number) => map.set(key, (map.get(key) ?? 0) + by);

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request as AsyncIterable<Buffer>) chunks.push(chunk);
    const match = /^\/([^/]+)\/v1\/chat\/completions$/.exec(request.url ?? '');
    if (!match || request.method !== 'POST') return sendError(response, 404, 'Unknown route', 'invalid_request_error', 'unknown_url');
    const deployment = match[1] ?? '';
    const key = String(request.headers.authorization ?? '').replace(/^Bearer /, '');
    received.push({ deployment, key });
    if (!keys.includes(key) || revoked.has(key)) {
      return sendError(response, 401, `Incorrect API key provided: ${key.slice(0, 3)}***. You can find your API key at https://platform.openai.com/account/api-keys.`, 'invalid_request_error', 'invalid_api_key');
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch {
      return sendError(response, 400, 'We could not parse the JSON body of your request.', 'invalid_request_error', null);
    }
    const behaviour = behaviours.get(deployment) ?? {};
    if (behaviour.failStatus !== undefined && (behaviour.times === undefined || behaviour.times > 0)) {
      if (behaviour.times !== undefined) behaviour.times -= 1;
      if (behaviour.retryAfterSeconds !== undefined) response.setHeader('retry-after', String(behaviour.retryAfterSeconds));
      return sendError(response, behaviour.failStatus, `failing with ${String(behaviour.failStatus)} on command`, behaviour.failStatus === 429 ? 'requests' : 'server_error', null);
    }
    bump(served, deployment, 1);
    bump(inProgress, deployment, 1);
    try {
      const words = [`served `, `by `, deployment];
      if (body['stream'] !== true) {
        if (behaviour.chunkDelayMs) await sleep(behaviour.chunkDelayMs * words.length);
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({
            id: 'chatcmpl-pool',
            object: 'chat.completion',
            created: 1_700_000_000,
            model: String(body['model']),
            choices: [{ index: 0, message: { role: 'assistant', content: words.join(''), refusal: null }, logprobs: null, finish_reason: 'stop' }],
            usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
          }),
        );
        return;
      }
      openStream(response);
      response.write(roleEvent);
      for (const [index, word] of words.entries()) {
        if (behaviour.chunkDelayMs) await sleep(behaviour.chunkDelayMs);
        response.write(contentEvent(word));
        if (index === 0 && behaviour.dropAfterFirstToken === true) {
          await sleep(20);
          response.socket?.destroy();
          return;
        }
      }
      response.end(finishEvents);
    } finally {
      bump(inProgress, deployment, -1);
    }
  }

  const server = createServer((request, response) => void handle(request, response));
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrlOf: (name) => `http://127.0.0.1:${port.toString()}/${name}/v1`,
    keys,
    served,
    received,
    inProgress,
    setBehaviour: (deployment, behaviour) => behaviours.set(deployment, { ...behaviour }),
    revokeKey: (key) => revoked.add(key),
    reset() {
      behaviours.clear();
      revoked.clear();
      served.clear();
      inProgress.clear();
      received.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
