// A mock Baidu Qianfan on 127.0.0.1:0: the OAuth token endpoint (401 invalid_client on a wrong
// pair) and the ERNIE chat endpoint, which checks the access token (110 unknown, 111 expired),
// the message rules (alternating, odd count, no system role: 336006 / 336003), and answers with
// `result` pieces and `is_end`. Errors come as HTTP 200 JSON bodies, as the real service does.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface QianfanPlan {
  pieces?: string[];
  delayMs?: number;
  /** Answer with this error code instead (as JSON with HTTP 200, or inside the SSE stream). */
  errorCode?: number;
  errorInStream?: boolean;
}

export interface MockQianfan {
  baseUrl: string;
  apiKey: string;
  secretKey: string;
  tokenRequests: number;
  chats: { endpoint: string; body: Record<string, unknown>; closed: Promise<number> }[];
  plan: QianfanPlan;
  /** Marks every issued token expired (the next chat gets 111). */
  expireTokens(): void;
  reset(): void;
  close(): Promise<void>;
}

export async function startMockQianfan(apiKey = 'qf-api-key-123456', secretKey = 'qf-secret-key-abcdef'): Promise<MockQianfan> {
  const sockets = new Set<Socket>();
  const valid = new Set<string>();
  const expired = new Set<string>();
  let serial = 0;
  const mock: MockQianfan = {
    baseUrl: '',
    apiKey,
    secretKey,
    tokenRequests: 0,
    chats: [],
    plan: {},
    expireTokens() {
      for (const token of valid) expired.add(token);
      valid.clear();
    },
    reset() {
      mock.tokenRequests = 0;
      mock.chats.length = 0;
      mock.plan = {};
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  const json = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  const server = createServer((request, response) => {
    const closed = new Promise<number>((resolve) => response.once('close', () => resolve(performance.now())));
    const parts: Buffer[] = [];
    request.on('data', (part: Buffer) => parts.push(part));
    request.on('end', () => {
      void (async () => {
        const url = new URL(request.url ?? '/', 'http://placeholder');
        if (url.pathname === '/oauth/2.0/token') {
          mock.tokenRequests++;
          await new Promise((resolve) => setTimeout(resolve, 20));
          if (url.searchParams.get('client_id') !== apiKey) return json(response, 401, { error: 'invalid_client', error_description: 'unknown client id' });
          if (url.searchParams.get('client_secret') !== secretKey) return json(response, 401, { error: 'invalid_client', error_description: 'Client authentication failed' });
          const token = `24.mock-token-${(++serial).toString()}`;
          valid.add(token);
          return json(response, 200, { access_token: token, expires_in: 2_592_000, scope: 'ai_custom_wenxinworkshop' });
        }
        const match = /^\/rpc\/2\.0\/ai_custom\/v1\/wenxinworkshop\/chat\/(.+)$/.exec(url.pathname);
        if (!match) return json(response, 404, { error_code: 3, error_msg: 'Unsupported openapi method' });
        const token = url.searchParams.get('access_token') ?? '';
        if (expired.has(token)) return json(response, 200, { error_code: 111, error_msg: 'Access token expired' });
        if (!valid.has(token)) return json(response, 200, { error_code: 110, error_msg: 'Access token invalid or no longer valid' });
        const body = JSON.parse(Buffer.concat(parts).toString('utf8') || '{}') as Record<string, unknown>;
        mock.chats.push({ endpoint: match[1] ?? '', body, closed });
        const messages = body['messages'] as { role: string; content: string }[];
        if (messages.some((message) => message.role !== 'user' && message.role !== 'assistant')) return json(response, 200, { error_code: 336003, error_msg: 'the role of message with even index in the messages must be user or function' });
        if (messages.length % 2 === 0 || messages.some((message, index) => message.role !== (index % 2 === 0 ? 'user' : 'assistant'))) return json(response, 200, { error_code: 336006, error_msg: 'the length of messages must be an odd number' });
        const plan = mock.plan;
        if (plan.errorCode && !plan.errorInStream) return json(response, 200, { error_code: plan.errorCode, error_msg: 'mock error' });
        const pieces = plan.pieces ?? ['文心', '一言：', `[${messages.at(-1)?.content ?? ''}] 🙂`];
        const usage = { prompt_tokens: 7, completion_tokens: 9, total_tokens: 16 };
        if (body['stream'] !== true) return json(response, 200, { id: 'as-mock', object: 'chat.completion', created: 1, result: pieces.join(''), is_end: true, is_truncated: false, need_clear_history: false, usage });
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const [index, piece] of pieces.entries()) {
          if (plan.delayMs) await new Promise((resolve) => setTimeout(resolve, plan.delayMs));
          if (response.destroyed) return;
          if (plan.errorInStream && index === 1) {
            response.end(`data: ${JSON.stringify({ error_code: plan.errorCode, error_msg: 'mock stream error' })}\n\n`);
            return;
          }
          const last = index === pieces.length - 1;
          response.write(`data: ${JSON.stringify({ id: 'as-mock', object: 'chat.completion', created: 1, sentence_id: index, is_end: last, is_truncated: false, result: piece, need_clear_history: false, usage })}\n\n`);
        }
        response.end();
      })();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  mock.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port.toString()}`;
  return mock;
}
