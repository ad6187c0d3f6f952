// A mock Anthropic Messages API on 127.0.0.1:0 that enforces what the real one does where Sluice
// depends on it: x-api-key (401 authentication_error), anthropic-version (400), max_tokens
// required, no system role inside messages, the first turn from the user, alternating roles. It
// streams named events (message_start … message_stop) and records every request.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface AnthropicRequestRecord {
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
  closed: Promise<number>;
}

export interface AnthropicPlan {
  pieces?: string[];
  delayMs?: number;
  stopReason?: string;
  /** Content blocks for tool use, streamed as input_json_delta pieces. */
  toolUse?: { id: string; name: string; jsonPieces: string[] };
  /** After the text: send `event: error` with this type instead of finishing. */
  errorType?: string;
}

export interface MockAnthropic {
  baseUrl: string;
  apiKey: string;
  requests: AnthropicRequestRecord[];
  plan: AnthropicPlan;
  reset(): void;
  close(): Promise<void>;
}

export async function startMockAnthropic(apiKey = 'sk-ant-test-0123456789abcdef'): Promise<MockAnthropic> {
  const sockets = new Set<Socket>();
  const mock: MockAnthropic = {
    baseUrl: '',
    apiKey,
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
  const fail = (response: ServerResponse, status: number, type: string, message: string) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ type: 'error', error: { type, message }, request_id: 'req_mock' }));
  };
  const server = createServer((request, response) => {
    const closed = new Promise<number>((resolve) => response.once('close', () => resolve(performance.now())));
    const parts: Buffer[] = [];
    request.on('data', (part: Buffer) => parts.push(part));
    request.on('end', () => {
      void (async () => {
        const body = JSON.parse(Buffer.concat(parts).toString('utf8') || '{}') as Record<string, unknown>;
        mock.requests.push({ headers: request.headers, body, closed });
        if (request.headers['x-api-key'] !== apiKey) return fail(response, 401, 'authentication_error', `invalid x-api-key ${String(request.headers['x-api-key'])}`);
        if (request.headers['anthropic-version'] !== '2023-06-01') return fail(response, 400, 'invalid_request_error', 'anthropic-version: header is required');
        if (request.url !== '/v1/messages') return fail(response, 404, 'not_found_error', 'Not found');
        if (typeof body['max_tokens'] !== 'number') return fail(response, 400, 'invalid_request_error', 'max_tokens: Field required');
        const messages = body['messages'] as { role: string }[] | undefined;
        if (!Array.isArray(messages) || messages.length === 0) return fail(response, 400, 'invalid_request_error', 'messages: Field required');
        if (messages.some((message) => message.role !== 'user' && message.role !== 'assistant')) return fail(response, 400, 'invalid_request_error', 'messages: Unexpected role "system". Use the top-level system parameter.');
        if (messages[0]?.role !== 'user') return fail(response, 400, 'invalid_request_error', 'messages: first message must use the "user" role');
        if (messages.some((message, index) => index > 0 && message.role === messages[index - 1]?.role)) return fail(response, 400, 'invalid_request_error', 'messages: roles must alternate between "user" and "assistant"');

        const plan = mock.plan;
        const pieces = plan.pieces ?? ['Hello', ' from', ' Claude 你好 🙂'];
        const stopReason = plan.stopReason ?? (plan.toolUse ? 'tool_use' : 'end_turn');
        if (body['stream'] !== true) {
          const content: unknown[] = [{ type: 'text', text: pieces.join('') }];
          if (plan.toolUse) content.push({ type: 'tool_use', id: plan.toolUse.id, name: plan.toolUse.name, input: JSON.parse(plan.toolUse.jsonPieces.join('')) as unknown });
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ id: 'msg_mock', type: 'message', role: 'assistant', model: body['model'], content, stop_reason: stopReason, stop_sequence: null, usage: { input_tokens: 12, output_tokens: 34 } }));
          return;
        }
        const send = (event: string, data: unknown) => response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
        response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        send('message_start', { type: 'message_start', message: { id: 'msg_mock', type: 'message', role: 'assistant', content: [], model: body['model'], stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, output_tokens: 1 } } });
        send('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
        send('ping', { type: 'ping' });
        for (const piece of pieces) {
          if (plan.delayMs) await new Promise((resolve) => setTimeout(resolve, plan.delayMs));
          if (response.destroyed) return;
          send('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: piece } });
        }
        send('content_block_stop', { type: 'content_block_stop', index: 0 });
        if (plan.errorType) {
          send('error', { type: 'error', error: { type: plan.errorType, message: 'Overloaded' } });
          response.end();
          return;
        }
        if (plan.toolUse) {
          send('content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: plan.toolUse.id, name: plan.toolUse.name, input: {} } });
          for (const partial of plan.toolUse.jsonPieces) send('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: partial } });
          send('content_block_stop', { type: 'content_block_stop', index: 1 });
        }
        send('message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: 34 } });
        send('message_stop', { type: 'message_stop' });
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
