// GET /api/ws: the WebSocket transport's front door. It authenticates the upgrade (a ticket in the
// URL, or Authorization where the client can send it), refuses it with a plain HTTP error when it
// cannot be served, and hands each open socket to a session (websocket-session.ts), which carries
// several chats at once, resumes, hub pushes and keepalive.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { SluiceError, toSluiceError } from '../../errors/sluice-error.js';
import { errorTable } from '../../errors/table.js';
import type { Principal } from '../../contract/principal.js';
import { isPushId } from '../../hub/hub.js';
import { headerValue } from '../request-handler.js';
import { serveWebSocket, type WebSocketSessionDependencies } from './websocket-session.js';

export interface WebSocketGatewayDependencies extends WebSocketSessionDependencies {
  /** Authenticates the upgrade request (Authorization header, or `?ticket=`); rejects with a SluiceError. */
  authenticate: (request: IncomingMessage, url: URL) => Promise<Principal>;
  /** Called once a socket is open, with a function that closes it (shutdown uses it). */
  onSocket?: (socket: WebSocket) => void;
}

export interface WebSocketGateway {
  /** Takes over an `upgrade` of the HTTP server for /api/ws; other paths get 404. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Open sockets. */
  readonly size: number;
  /** Closes every socket (1001 going away). */
  closeAll(): void;
}

export function createWebSocketGateway(dependencies: WebSocketGatewayDependencies): WebSocketGateway {
  const { config, logger } = dependencies;
  const server = new WebSocketServer({ noServer: true, maxPayload: config.server.bodyLimitBytes, perMessageDeflate: false });
  const sockets = new Set<WebSocket>();

  async function upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://sluice.invalid');
    if (url.pathname !== '/api/ws') {
      refuse(socket, 404, new SluiceError('not_found', { message: `No WebSocket route ${url.pathname}; use /api/ws.` }));
      return;
    }
    let principal: Principal;
    const lastEventId = url.searchParams.get('lastEventId') ?? undefined;
    try {
      if (lastEventId !== undefined && !isPushId(lastEventId)) throw new SluiceError('invalid_request', { param: 'lastEventId', message: 'lastEventId: must be the decimal id of a hub push (1 to 15 digits).' });
      principal = await dependencies.authenticate(request, url);
    } catch (error) {
      refuse(socket, toSluiceError(error).status, toSluiceError(error));
      return;
    }
    server.handleUpgrade(request, socket, head, (ws) => {
      sockets.add(ws);
      ws.once('close', () => sockets.delete(ws));
      dependencies.onSocket?.(ws);
      serveWebSocket(ws, principal, lastEventId, dependencies, { traceparent: headerValue(request.headers.traceparent), tracestate: headerValue(request.headers.tracestate) });
    });
  }

  function refuse(socket: Duplex, status: number, error: SluiceError): void {
    const body = JSON.stringify({ error: { message: error.message, type: errorTable[error.code].type, param: error.param ?? null, code: error.code } });
    socket.end(`HTTP/1.1 ${status.toString()} ${statusText(status)}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body).toString()}\r\nconnection: close\r\n\r\n${body}`);
  }

  return {
    handleUpgrade(request, socket, head) {
      socket.on('error', () => socket.destroy());
      upgrade(request, socket, head).catch((error: unknown) => {
        logger.error({ err: error }, 'websocket upgrade failed');
        socket.destroy();
      });
    },
    get size() {
      return sockets.size;
    },
    closeAll() {
      for (const ws of sockets) ws.close(1001, 'The gateway is shutting down.');
    },
  };
}

function statusText(status: number): string {
  return ({ 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 503: 'Service Unavailable' } as Record<number, string>)[status] ?? 'Error';
}

