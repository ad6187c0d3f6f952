// A mock in-house streaming endpoint on 127.0.0.1:0 that checks each auth scheme the way such
// gateways do: ak-sk-sha256 (signature = sha256hex(ak + sk + requestTime + body), requestTime
// within 5 minutes), a named header, or Bearer. It streams JSON events `{code, data:{content}}`
// ending with `code: -200` (or plain-text events), and sets an x-trace-id header.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface SignedPlan {
  plain?: boolean;
  delayMs?: number;
  pieces?: string[];
}

export interface MockSignedHttp {
  url: string;
  ak: string;
  sk: string;
  apiKey: string;
  requests: { headers: IncomingMessage['headers']; body: Record<string, unknown>; rawBody: string; closed: Promise<number> }[];
  plan: SignedPlan;
  reset(): void;
  close(): Promise<void>;
}

export async function startMockSignedHttp(): Promise<MockSignedHttp> {
  const sockets = new Set<Socket>();
  const mock: MockSignedHttp = {
    url: '',
    ak: 'company-ak-001',
    sk: 'company-sk-secret-7f3a9c',
    apiKey: 'company-header-key-5521',
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
  const refuse = (response: ServerResponse, status: number, message: string) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ code: status, message }));
  };
  const server = createServer((request, response) => {
    const closed = new Promise<number>((resolve) => response.once('close', () => resolve(performance.now())));
    const parts: Buffer[] = [];
    request.on('data', (part: Buffer) => parts.push(part));
    request.on('end', () => {
      void (async () => {
        const rawBody = Buffer.concat(parts).toString('utf8');
        const body = JSON.parse(rawBody || '{}') as Record<string, unknown>;
        mock.requests.push({ headers: request.headers, body, rawBody, closed });
        const scheme = request.url?.split('/')[1];
        if (scheme === 'aksk') {
          const requestTime = String(request.headers['requesttime'] ?? '');
          const expected = createHash('sha256').update(mock.ak + mock.sk + requestTime + rawBody, 'utf8').digest('hex');
          if (request.headers['account'] !== mock.ak || request.headers['signature'] !== expected) return refuse(response, 401, 'signature mismatch');
          if (!/^\d+$/.test(requestTime) || Math.abs(Date.now() - Number(requestTime)) > 5 * 60_000) return refuse(response, 401, 'requestTime expired');
        } else if (scheme === 'header') {
          if (request.headers['x-api-key'] !== mock.apiKey) return refuse(response, 401, 'bad x-api-key');
        } else if (scheme === 'bearer') {
          if (request.headers.authorization !== `Bearer ${mock.apiKey}`) return refuse(response, 401, 'bad bearer');
        } else {
          return refuse(response, 404, 'no such agent');
        }
        const question = (body['messages'] as { content: string }[] | undefined)?.at(-1)?.content ?? '';
        const pieces = mock.plan.pieces ?? ['智能体', '回答：', question];
        response.writeHead(200, { 'content-type': 'text/event-stream', 'x-trace-id': 'trace-123abc', 'x-internal': 'do-not-copy' });
        for (const piece of pieces) {
          if (mock.plan.delayMs) await new Promise((resolve) => setTimeout(resolve, mock.plan.delayMs));
          if (response.destroyed) return;
          response.write(mock.plan.plain ? `data: ${piece}\n\n` : `data: ${JSON.stringify({ code: 0, data: { content: piece } })}\n\n`);
        }
        response.end(mock.plan.plain ? '' : `data: ${JSON.stringify({ code: -200, data: { content: '' } })}\n\n`);
      })();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  mock.url = `http://127.0.0.1:${(server.address() as AddressInfo).port.toString()}`;
  return mock;
}
