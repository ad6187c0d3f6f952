// Requests that ask to switch to a protocol Sluice does not speak. Java's HttpClient (its default
// version is HTTP/2) and `curl --http2` send `Upgrade: h2c` on plain http://, and Node hands every
// request that carries Upgrade to the server's 'upgrade' listeners, not to its request handler, with
// the HTTP parser already detached from the socket. Only a WebSocket upgrade is Sluice's; any other
// is served as the HTTP/1.1 request it also is, which RFC 9110 §7.8 allows (a server may ignore
// Upgrade): a ServerResponse of our own on the raw socket, a fresh request message carrying the
// body, and the connection closed after the answer. docs/architecture.md ("HTTP front door").
import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { SluiceError } from '../errors/sluice-error.js';
import { sendError } from './respond.js';

/** True when the request asks for a WebSocket (the `Upgrade` list names `websocket`). */
export function isWebSocketUpgrade(request: IncomingMessage): boolean {
  const upgrade = request.headers.upgrade;
  return upgrade !== undefined && upgrade.split(',').some((protocol) => protocol.trim().toLowerCase() === 'websocket');
}

/**
 * Serves an upgrade request as plain HTTP/1.1 through `handle`. Its body, if any, must have a
 * Content-Length (a chunked one would need the parser Node has just detached): otherwise the
 * request gets 400 naming the header to change.
 */
export function serveIgnoringUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, handle: (request: IncomingMessage, response: ServerResponse) => void): void {
  const forwarded = new IncomingMessage(socket as Socket);
  forwarded.method = request.method ?? 'GET';
  forwarded.url = request.url ?? '/';
  forwarded.httpVersionMajor = request.httpVersionMajor;
  forwarded.httpVersionMinor = request.httpVersionMinor;
  forwarded.httpVersion = request.httpVersion;
  forwarded.rawHeaders = request.rawHeaders;
  forwarded.headers = request.headers;

  const response = new ServerResponse(forwarded);
  response.shouldKeepAlive = false;
  response.assignSocket(socket as Socket);
  response.once('finish', () => {
    response.detachSocket(socket as Socket);
    socket.end();
  });

  if (request.headers['transfer-encoding'] !== undefined) {
    socket.resume();
    sendError(response, new SluiceError('invalid_request', { param: 'transfer-encoding', message: 'A request with an Upgrade header must send its body with Content-Length, not Transfer-Encoding: drop the Upgrade header (use HTTP/1.1), or send Content-Length.' }));
    return;
  }
  feedBody(forwarded, socket, head, Number(request.headers['content-length'] ?? 0));
  handle(forwarded, response);
}

/** Pushes `length` body bytes, from `head` and then the socket, into the request message. */
function feedBody(message: IncomingMessage, socket: Duplex, head: Buffer, length: number): void {
  let remaining = Number.isSafeInteger(length) && length > 0 ? length : 0;
  const take = (bytes: Buffer): void => {
    if (remaining === 0 || bytes.length === 0) return;
    const part = bytes.length > remaining ? bytes.subarray(0, remaining) : bytes;
    remaining -= part.length;
    message.push(part);
    if (remaining === 0) finish();
  };
  const finish = (): void => {
    socket.off('data', take);
    message.complete = true;
    message.push(null);
  };
  if (remaining === 0) {
    finish();
    return;
  }
  socket.on('data', take);
  // A client that leaves mid-body: the route's body read fails, as on any aborted request.
  socket.once('close', () => {
    if (remaining > 0) message.destroy(new Error('The client closed the connection before sending the whole body.'));
  });
  take(head);
}
