// Raw TCP helpers for end-to-end tests, all on 127.0.0.1: a port nobody listens on, and a server
// that accepts connections and never says a word (a TLS handshake to it never completes).
import { createServer, type Socket } from 'node:net';

/** A port that was free a moment ago: connecting to it is refused (or a test may listen on it). */
export async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface SilentServer {
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Of those, how many the peer has closed. */
  readonly closed: number;
  close(): Promise<void>;
}

/**
 * Accepts TCP connections, reads and discards what arrives (so it notices when the peer closes)
 * and never answers.
 */
export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  let closed = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      closed++;
      sockets.delete(socket);
    });
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get accepted() {
      return accepted;
    },
    get closed() {
      return closed;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
