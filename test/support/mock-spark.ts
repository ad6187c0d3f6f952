// A mock iFlytek Spark WebSocket service on 127.0.0.1:0 that checks what the real one checks:
// the HMAC-SHA256 signed URL (401 on a bad signature or key), the date (403 when more than 300 s
// off), the path (404), and the app id (frame code 11200). It answers each request frame with
// status 0/1/2 frames echoing a token from the user's message, usage on the last frame, then
// closes the socket.
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface SparkCredentials {
  appId: string;
  apiKey: string;
  apiSecret: string;
}

export interface SparkPlan {
  /** Text pieces of the answer; by default derived from the last user message. */
  pieces?: string[];
  delayMs?: number;
  /** Answer with this error code (and a sid) instead. */
  errorCode?: number;
  /** Close the socket after the first frame, without a status 2 frame. */
  dropAfterFirst?: boolean;
}

export interface MockSpark {
  baseUrl: string;
  credentials: SparkCredentials;
  frames: Record<string, unknown>[];
  plan: SparkPlan;
  /** Resolves when a connection closes, in order of connection. */
  closes: Promise<number>[];
  /** The request headers of every accepted handshake, in order. */
  handshakes: IncomingHttpHeaders[];
  reset(): void;
  close(): Promise<void>;
}

export const sparkCredentials: SparkCredentials = { appId: 'app-1234', apiKey: 'spark-key-abcdef0123456789', apiSecret: 'spark-secret-MjlmNzkzNmZkMDQ2' };

function verify(request: IncomingMessage, credentials: SparkCredentials): number {
  const url = new URL(request.url ?? '/', 'http://placeholder');
  if (!['/v3.5/chat', '/v1.1/chat', '/v4.0/chat'].includes(url.pathname)) return 404;
  const authorization = url.searchParams.get('authorization') ?? '';
  const date = url.searchParams.get('date') ?? '';
  const host = url.searchParams.get('host') ?? '';
  const decoded = Buffer.from(authorization, 'base64').toString();
  const fields = new Map<string, string>([...decoded.matchAll(/(\w+)="([^"]*)"/g)].map((match): [string, string] => [match[1] ?? '', match[2] ?? '']));
  // The service accepts `hmac username` in place of `api_key`.
  const key = fields.get('api_key') ?? fields.get('username');
  if (key !== credentials.apiKey || fields.get('algorithm') !== 'hmac-sha256' || host !== request.headers.host) return 401;
  const origin = `host: ${host}\ndate: ${date}\nGET ${url.pathname} HTTP/1.1`;
  const expected = createHmac('sha256', credentials.apiSecret).update(origin).digest('base64');
  if (fields.get('signature') !== expected) return 401;
  const at = Date.parse(date.replace(/ UTC$/, ' GMT'));
  if (Number.isNaN(at) || Math.abs(Date.now() - at) > 300_000) return 403;
  return 0;
}

export async function startMockSpark(credentials: SparkCredentials = sparkCredentials): Promise<MockSpark> {
  const sockets = new Set<Socket>();
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true });
  const mock: MockSpark = {
    baseUrl: '',
    credentials,
    frames: [],
    plan: {},
    closes: [],
    handshakes: [],
    reset() {
      mock.handshakes.length = 0;
      mock.frames.length = 0;
      mock.plan = {};
      mock.closes.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (request, socket, head) => {
    const status = verify(request, credentials);
    if (status !== 0) {
      socket.end(`HTTP/1.1 ${status.toString()} Refused\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"message":"HMAC signature cannot be verified"}`);
      return;
    }
    mock.handshakes.push(request.headers);
    wss.handleUpgrade(request, socket, head, (ws) => serve(ws));
  });

  function serve(ws: WebSocket): void {
    mock.closes.push(new Promise((resolve) => ws.once('close', () => resolve(performance.now()))));
    ws.once('message', (data) => {
      void (async () => {
        const frame = JSON.parse((Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer)).toString('utf8')) as { header: { app_id: string; uid: string }; parameter: { chat: { domain: string } }; payload: { message: { text: { role: string; content: string }[] } } };
        mock.frames.push(JSON.parse(JSON.stringify(frame)) as Record<string, unknown>);
        const sid = 'cht000b1234@dx18f0000000000000';
        const send = (status: number, content: string, extra: Record<string, unknown> = {}) =>
          ws.send(JSON.stringify({ header: { code: 0, message: 'Success', sid, status }, payload: { choices: { status, seq: 0, text: [{ content, role: 'assistant', index: 0 }] }, ...extra } }));
        if (frame.header.app_id !== credentials.appId) {
          ws.send(JSON.stringify({ header: { code: 11200, message: 'AppIdNoAuthError:(11200)auth no license', sid, status: 2 } }));
          ws.close();
          return;
        }
        const plan = mock.plan;
        if (plan.errorCode) {
          ws.send(JSON.stringify({ header: { code: plan.errorCode, message: 'mock error', sid, status: 2 } }));
          ws.close();
          return;
        }
        const question = frame.payload.message.text.at(-1)?.content ?? '';
        const pieces = plan.pieces ?? [`答复`, `[${question}]`, ` 完成 🙂`];
        for (const [index, piece] of pieces.entries()) {
          if (plan.delayMs) await new Promise((resolve) => setTimeout(resolve, plan.delayMs));
          if (ws.readyState !== ws.OPEN) return;
          const last = index === pieces.length - 1;
          if (last) send(2, piece, { usage: { text: { question_tokens: 4, prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 } } });
          else send(index === 0 ? 0 : 1, piece);
          if (plan.dropAfterFirst) {
            ws.terminate();
            return;
          }
        }
        ws.close();
      })();
    });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  mock.baseUrl = `ws://127.0.0.1:${(server.address() as AddressInfo).port.toString()}`;
  return mock;
}
