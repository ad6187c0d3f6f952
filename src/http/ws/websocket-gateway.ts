// GET /api/ws: the WebSocket transport. One socket carries several chats at once (each tagged with
// the client's own id), resumes of generations, hub pushes, and app-level ping/pong; protocol
// pings find dead peers. A bad frame gets an error frame naming the problem, never a dropped
// socket, and one chat's failure never touches another's.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import type { Config } from '../../config/config.js';
import { SluiceError, toSluiceError } from '../../errors/sluice-error.js';
import { errorTable } from '../../errors/table.js';
import type { Principal } from '../../contract/principal.js';
import { isPushId, type Hub, type HubConnection, type PushMessage } from '../../hub/hub.js';
import type { Logger } from '../../observability/logger.js';
import type { GenerationView } from '../../relay/generation.js';
import { nativeEventId, parseNativeEventId, toNativeEvent, type NativeStreamIdentity } from '../../relay/encoders/native-events.js';
import { parseWith } from '../validate.js';
import type { NativeChats } from '../routes/native-chat.js';
import { nativeChatBodySchema } from '../routes/native-chat.js';
import { clientFrameSchema, type ServerFrame } from './frames.js';

export interface WebSocketGatewayDependencies {
  config: Config;
  hub: Hub;
  chats: NativeChats;
  logger: Logger;
  now: () => number;
  createId: () => string;
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

/** At most this many chats run at once on one socket; more get an error frame. */
const maxChatsPerSocket = 16;

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
      void serveSocket(ws, principal, lastEventId);
    });
  }

  /**
   * Serves one socket. With `lastEventId` (`?lastEventId=` on the URL) the hub pushes the user
   * missed since then come first, then live ones, none twice.
   */
  async function serveSocket(ws: WebSocket, principal: Principal, lastEventId: string | undefined): Promise<void> {
    // Listening at once: frames that arrive while the hub registers are handled after it.
    let markReady!: () => void;
    const ready = new Promise<void>((resolve) => (markReady = resolve));
    ws.on('message', (raw, isBinary) => {
      ready
        .then(() => onFrame(raw, isBinary))
        .catch((error: unknown) => {
          const failure = toSluiceError(error);
          if (failure.code === 'internal_error') logger.error({ err: failure.cause ?? failure, userId: principal.userId }, 'websocket frame failed');
          frameError(failure, frameId(raw));
        });
    });
    /** Pushes delivered while the replay is read: sent after it, minus those it holds. */
    let early: PushMessage[] | undefined = lastEventId !== undefined ? [] : undefined;
    /** Running chats by client id: `cancel` ends one (its last frame is still sent); `detach` stops following it. */
    const chats = new Map<string, { cancel: () => void; detach: (cancel: boolean) => void }>();
    const send = (frame: ServerFrame | string): void => {
      if (ws.readyState === ws.OPEN) ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
    };
    const tooSlow = (): boolean => ws.bufferedAmount > config.server.maxBufferedBytes;

    // Protocol-level keepalive: a peer that misses a whole interval is gone.
    let alive = true;
    ws.on('pong', () => (alive = true));
    const pingTimer = config.websocket.pingIntervalMs > 0
      ? setInterval(() => {
          if (!alive) {
            ws.terminate();
            return;
          }
          alive = false;
          ws.ping();
        }, config.websocket.pingIntervalMs)
      : undefined;

    const connection: HubConnection = {
      id: dependencies.createId(),
      userId: principal.userId,
      transport: 'ws',
      openedAt: dependencies.now(),
      deliver(message: PushMessage) {
        if (ws.readyState !== ws.OPEN) return false;
        if (early) {
          early.push(message);
          return true;
        }
        if (tooSlow()) {
          closeTooSlow();
          return false;
        }
        // The data is already JSON text: embedded as it is, not parsed and serialised again.
        sendPush(message);
        return true;
      },
      close(reason) {
        // 4000: closed by an admin, do not reconnect; 1012 (service restart): reconnect elsewhere.
        ws.close(reason.code === 'shutting_down' ? 1012 : 4000, reason.message.slice(0, 120));
      },
    };
    function sendPush(message: PushMessage): void {
      send(pushFrame(message));
    }
    const unregister = await dependencies.hub.register(connection).catch((error: unknown) => {
      logger.warn({ err: error }, 'hub: could not register a WebSocket connection');
      return undefined;
    });
    if (lastEventId !== undefined) {
      const replayed = await dependencies.hub.replay(principal.userId, lastEventId).catch((error: unknown) => {
        logger.warn({ err: error }, 'hub: replay for a WebSocket connection failed');
        return [];
      });
      const replayedIds = new Set(replayed.map((message) => message.id));
      for (const message of replayed) sendPush(message);
      for (const message of early ?? []) if (!replayedIds.has(message.id)) sendPush(message);
      early = undefined;
    }
    markReady();

    function closeTooSlow(): void {
      const error = new SluiceError('client_too_slow', { message: `The client left more than ${config.server.maxBufferedBytes.toString()} bytes unread (server.maxBufferedBytes); the socket was closed.` });
      for (const chat of [...chats.values()]) chat.detach(true);
      ws.close(1008, error.message.slice(0, 120));
    }

    function frameError(error: SluiceError, id?: string): void {
      send({ type: 'error', ...(id !== undefined ? { id } : {}), code: error.code, message: error.message, ...(error.param !== undefined ? { param: error.param } : {}) });
    }

    /** Sends a generation's events from `fromSeq` on, tagged with the chat id, until its end. */
    function follow(id: string, generation: GenerationView, identity: NativeStreamIdentity, fromSeq: number): void {
      let cursor = fromSeq;
      let stopped = false;
      const pump = (): void => {
        if (stopped) return;
        if (tooSlow()) {
          closeTooSlow();
          return;
        }
        while (cursor < generation.events.length) {
          const seq = cursor++;
          const event = generation.events[seq];
          if (!event) break;
          const native = toNativeEvent(event, identity);
          if (native) send({ type: native.name, id, eventId: nativeEventId(identity.generationId, seq), data: native.data });
          if (event.type === 'end' || event.type === 'error') {
            detach(false);
            return;
          }
        }
      };
      const unsubscribe = generation.subscribe(pump);
      function detach(cancel: boolean): void {
        if (stopped) return;
        stopped = true;
        chats.delete(id);
        if (cancel) generation.cancel(new SluiceError('cancelled', { message: 'The chat was cancelled.' }));
        unsubscribe();
      }
      chats.set(id, { detach, cancel: () => generation.cancel(new SluiceError('cancelled', { message: 'The chat was cancelled by the client (cancel frame).' })) });
      pump();
    }

    async function onFrame(raw: RawData, isBinary: boolean): Promise<void> {
      if (isBinary) throw new SluiceError('invalid_frame', { message: 'Frames are JSON text; binary frames are not accepted.' });
      let value: unknown;
      try {
        value = JSON.parse(rawText(raw));
      } catch (error) {
        throw new SluiceError('invalid_frame', { message: `The frame is not valid JSON (${(error as Error).message}).` });
      }
      const frame = parseFrame(value);
      switch (frame.type) {
        case 'ping':
          send({ type: 'pong' });
          return;
        case 'cancel': {
          const chat = chats.get(frame.id);
          if (!chat) throw new SluiceError('invalid_frame', { param: 'id', message: `id: no running chat "${frame.id}" on this socket.` });
          chat.cancel();
          return;
        }
        case 'chat': {
          if (chats.has(frame.id)) throw new SluiceError('invalid_frame', { param: 'id', message: `id: chat "${frame.id}" is still running on this socket; use a new id.` });
          if (chats.size >= maxChatsPerSocket) throw new SluiceError('rate_limited', { message: `At most ${maxChatsPerSocket.toString()} chats run at once on one socket.`, retryAfterSeconds: 1 });
          const { id } = frame;
          const body = asFrameError(() => parseWith(nativeChatBodySchema, Object.fromEntries(Object.entries(frame).filter(([key]) => key !== 'type' && key !== 'id'))));
          // Reserved before the await, so a second frame with the same id is refused meanwhile.
          const reserved = { cancel: () => undefined, detach: () => void chats.delete(id) };
          chats.set(id, reserved);
          try {
            const { generation, identity } = await dependencies.chats.begin(principal, body, { stream: true, requestId: `ws-${connection.id}-${id}` });
            if (ws.readyState !== ws.OPEN) {
              // The socket closed while the chat was admitted: leaving it resumable or not, as configured.
              chats.delete(id);
              if (config.websocket.cancelChatsOnClose) generation.cancel(new SluiceError('cancelled', { message: 'The WebSocket closed.' }));
              return;
            }
            chats.delete(id);
            follow(id, generation, identity, 0);
          } catch (error) {
            chats.delete(id);
            throw error;
          }
          return;
        }
        case 'resume': {
          if (chats.has(frame.id)) throw new SluiceError('invalid_frame', { param: 'id', message: `id: chat "${frame.id}" is still running on this socket; use a new id.` });
          const parsed = parseNativeEventId(frame.lastEventId);
          if (!parsed) throw new SluiceError('invalid_frame', { param: 'lastEventId', message: 'lastEventId: must be an event id such as AbC123:17.' });
          const { generation, identity } = await dependencies.chats.findOwned(principal, parsed.generationId);
          const fromSeq = parsed.seq + 1;
          const finished = generation.finished && fromSeq >= generation.events.length;
          send({ type: 'resumed', id: frame.id, generationId: parsed.generationId, finished });
          if (!finished) follow(frame.id, generation, identity, fromSeq);
          return;
        }
      }
    }

    ws.on('error', (error) => logger.debug({ err: error }, 'websocket error'));
    ws.once('close', () => {
      clearInterval(pingTimer);
      // Leaving resumable generations running for resumeGraceMs is the default: a dropped
      // socket (a train tunnel) can come back and resume. cancelChatsOnClose stops them at once.
      for (const chat of [...chats.values()]) chat.detach(config.websocket.cancelChatsOnClose);
      void unregister?.().catch((error: unknown) => logger.warn({ err: error }, 'hub: unregistering a WebSocket connection failed'));
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

/** The last push frame built: a broadcast reaches every socket one after another, so it is built once. */
let lastPushFrame: { message: PushMessage; frame: string } | undefined;

/** A push as a WebSocket frame; the data is already JSON text, embedded as it is. */
function pushFrame(message: PushMessage): string {
  if (lastPushFrame?.message !== message) {
    lastPushFrame = { message, frame: `{"type":"push","eventId":${JSON.stringify(message.id)},"event":${JSON.stringify(message.event)},"data":${message.json}}` };
  }
  return lastPushFrame.frame;
}

/** Checks a frame; the chat frame's fields are checked again as a chat body, naming the field. */
function parseFrame(value: unknown) {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SluiceError('invalid_frame', { message: 'A frame is a JSON object with a type: chat, cancel, resume or ping.' });
  return asFrameError(() => parseWith(clientFrameSchema, value));
}

/** Validation failures of a frame are `invalid_frame`, with the same field and message. */
function asFrameError<T>(validate: () => T): T {
  try {
    return validate();
  } catch (error) {
    const failure = toSluiceError(error);
    if (failure.code !== 'invalid_request') throw error;
    throw new SluiceError('invalid_frame', { message: failure.message, ...(failure.param !== undefined ? { param: failure.param } : {}) });
  }
}

function rawText(raw: RawData): string {
  if (Buffer.isBuffer(raw)) return raw.toString('utf8');
  if (Array.isArray(raw)) return Buffer.concat(raw).toString('utf8');
  return Buffer.from(raw).toString('utf8');
}

/** The chat id of a frame, when it is readable, so that its error frame is tagged. */
function frameId(raw: RawData): string | undefined {
  try {
    const value = JSON.parse(rawText(raw)) as { id?: unknown };
    return typeof value.id === 'string' && value.id.length <= 64 ? value.id : undefined;
  } catch {
    return undefined;
  }
}

function statusText(status: number): string {
  return ({ 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 503: 'Service Unavailable' } as Record<number, string>)[status] ?? 'Error';
}

