// One client socket of GET /api/ws, from the upgrade to its close: its hub subscription (pushes,
// with a replay after `?lastEventId=`), the chats it runs (each tagged with the client's own id and
// followed with the shared follow loop), the frames it sends, and the protocol-level keepalive.
// A bad frame gets an error frame naming the problem, never a dropped socket, and one chat's
// failure never touches another's.
import type { RawData, WebSocket } from 'ws';
import type { Config } from '../../config/config.js';
import type { Principal } from '../../contract/principal.js';
import { SluiceError, toSluiceError } from '../../errors/sluice-error.js';
import type { Hub, HubCloseReason, PushMessage } from '../../hub/hub.js';
import { subscribeToHub, type HubSubscription } from '../../hub/hub-subscription.js';
import type { Logger } from '../../observability/logger.js';
import type { RequestTrace, Tracing } from '../../observability/tracing.js';
import type { GenerationSummary } from '../../contract/generation-summary.js';
import { nativeEventId, parseNativeEventId, toNativeEvent, type NativeStreamIdentity } from '../../relay/encoders/native-events.js';
import { followGeneration, type Follower } from '../../relay/follow-generation.js';
import type { GenerationView } from '../../relay/generation.js';
import type { NativeChats } from '../routes/native-chat.js';
import { chatBodyOf, frameIdOf, pushFrame, readClientFrame, type ClientFrame, type ServerFrame } from './frames.js';

export interface WebSocketSessionDependencies {
  readonly config: Config;
  readonly hub: Hub;
  readonly chats: NativeChats;
  readonly logger: Logger;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  /** Hub connection ids: short ASCII, unique across nodes. */
  readonly createId: () => string;
  /** Present when tracing is on: each chat on a socket is a span (docs/tracing.md). */
  readonly tracing?: Tracing;
}

/** The W3C trace context the client sent on the upgrade request: the parent of every chat's span. */
export interface UpgradeTraceContext {
  readonly traceparent?: string | undefined;
  readonly tracestate?: string | undefined;
}

/** A chat on this socket: `cancel` ends its generation (its last frame is still sent); `detach` stops following it. */
interface RunningChat {
  cancel(): void;
  detach(cancelGeneration: boolean): void;
}

/** At most this many chats run at once on one socket; more get an error frame. */
const maxChatsPerSocket = 16;

/**
 * Serves one open socket until it closes. With `lastEventId` (`?lastEventId=` on the URL) the hub
 * pushes the user missed since then come first, then live ones, none twice.
 */
export function serveWebSocket(ws: WebSocket, principal: Principal, lastEventId: string | undefined, dependencies: WebSocketSessionDependencies, traceContext: UpgradeTraceContext = {}): void {
  new WebSocketSession(ws, principal, dependencies, traceContext).start(lastEventId);
}

class WebSocketSession {
  readonly #ws: WebSocket;
  readonly #principal: Principal;
  readonly #dependencies: WebSocketSessionDependencies;
  readonly #config: Config;
  readonly #connectionId: string;
  readonly #traceContext: UpgradeTraceContext;
  /** Running chats by the client's id. */
  readonly #chats = new Map<string, RunningChat>();
  #subscription: HubSubscription | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  /** False from a protocol ping until its pong: a peer that misses a whole interval is gone. */
  #alive = true;

  constructor(ws: WebSocket, principal: Principal, dependencies: WebSocketSessionDependencies, traceContext: UpgradeTraceContext) {
    this.#ws = ws;
    this.#traceContext = traceContext;
    this.#principal = principal;
    this.#dependencies = dependencies;
    this.#config = dependencies.config;
    this.#connectionId = dependencies.createId();
  }

  start(lastEventId: string | undefined): void {
    const { hub, logger, now } = this.#dependencies;
    const { subscription, ready } = subscribeToHub({
      hub,
      connection: { id: this.#connectionId, userId: this.#principal.userId, transport: 'ws', openedAt: now() },
      lastEventId,
      sink: { deliver: (message, replayed) => this.#deliverPush(message, replayed), close: (reason) => this.#closeForHub(reason) },
      // The socket is open already: without the hub it still serves chats.
      onError: (error, step) => logger.warn({ err: error }, step === 'register' ? 'hub: could not register a WebSocket connection' : 'hub: replay for a WebSocket connection failed'),
    });
    this.#subscription = subscription;
    // Listening at once: frames that arrive while the hub registers and replays are handled after it.
    this.#ws.on('message', (raw, isBinary) => {
      ready
        .then(() => this.#onFrame(readClientFrame(raw, isBinary)))
        .catch((error: unknown) => this.#frameFailed(error, raw));
    });
    this.#startKeepalive();
    this.#ws.on('error', (error) => logger.debug({ err: error }, 'websocket error'));
    this.#ws.once('close', () => this.#onClose());
  }

  #startKeepalive(): void {
    const intervalMs = this.#config.websocket.pingIntervalMs;
    this.#ws.on('pong', () => (this.#alive = true));
    if (intervalMs <= 0) return;
    this.#pingTimer = setInterval(() => {
      if (!this.#alive) {
        this.#ws.terminate();
        return;
      }
      this.#alive = false;
      this.#ws.ping();
    }, intervalMs);
  }

  #onClose(): void {
    clearInterval(this.#pingTimer);
    // Leaving resumable generations running for resumeGraceMs is the default: a dropped
    // socket (a train tunnel) can come back and resume. cancelChatsOnClose stops them at once.
    for (const chat of [...this.#chats.values()]) chat.detach(this.#config.websocket.cancelChatsOnClose);
    this.#subscription?.unsubscribe().catch((error: unknown) => this.#dependencies.logger.warn({ err: error }, 'hub: unregistering a WebSocket connection failed'));
  }

  async #onFrame(frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case 'ping':
        this.#send({ type: 'pong' });
        return;
      case 'cancel': {
        const chat = this.#chats.get(frame.id);
        if (!chat) throw new SluiceError('invalid_frame', { param: 'id', message: `id: no running chat "${frame.id}" on this socket.` });
        chat.cancel();
        return;
      }
      case 'chat':
        return this.#startChat(frame);
      case 'resume':
        return this.#resume(frame);
    }
  }

  async #startChat(frame: Extract<ClientFrame, { type: 'chat' }>): Promise<void> {
    const { id } = frame;
    this.#refuseRunningId(id);
    if (this.#chats.size >= maxChatsPerSocket) throw new SluiceError('rate_limited', { message: `At most ${maxChatsPerSocket.toString()} chats run at once on one socket.`, retryAfterSeconds: 1 });
    const body = chatBodyOf(frame);
    // Reserved before the await, so a second frame with the same id is refused meanwhile.
    const reserved: RunningChat = { cancel: () => undefined, detach: () => void this.#chats.delete(id) };
    this.#chats.set(id, reserved);
    const requestId = `ws-${this.#connectionId}-${id}`;
    const trace = this.#startTrace(requestId);
    let started: Awaited<ReturnType<NativeChats['begin']>>;
    try {
      started = await this.#dependencies.chats.begin(this.#principal, body, { stream: true, requestId, route: 'websocket', ...(trace ? { trace: trace.generation } : {}) });
    } catch (error) {
      // Refused before it started (unknown model, limits, …): the span says why.
      const failure = toSluiceError(error);
      trace?.end({ status: failure.status, userId: this.#principal.userId, keyId: this.#principal.keyId, model: body.model, errorCode: failure.code });
      throw error;
    } finally {
      if (this.#chats.get(id) === reserved) this.#chats.delete(id);
    }
    const { generation, identity } = started;
    if (trace) void generation.done.then((summary) => this.#endTrace(trace, identity.model, summary));
    this.#follow(id, generation, identity, 0);
  }

  /**
   * A chat's span, when tracing is on: a SERVER span named `websocket chat` under the trace context
   * of the upgrade request, with the generation's upstream attempts as its children. Its status
   * code is the socket's (101); an error, in-band or a refusal, is its error code.
   */
  #startTrace(requestId: string): RequestTrace | undefined {
    return this.#dependencies.tracing?.startRequest({
      name: 'websocket chat',
      method: 'GET',
      route: '/api/ws',
      requestId,
      startedAt: this.#dependencies.now(),
      traceparent: this.#traceContext.traceparent,
      tracestate: this.#traceContext.tracestate,
    });
  }

  /** Ends a chat's span when its generation ended (it may outlive the socket, to be resumed). */
  #endTrace(trace: RequestTrace, model: string, summary: GenerationSummary): void {
    trace.end({
      status: 101,
      userId: this.#principal.userId,
      keyId: this.#principal.keyId,
      model,
      provider: summary.provider,
      outcome: summary.outcome,
      errorCode: summary.errorCode,
      timeToFirstTokenMs: summary.timeToFirstTokenMs,
      usage: summary.usage,
    });
  }

  async #resume(frame: Extract<ClientFrame, { type: 'resume' }>): Promise<void> {
    this.#refuseRunningId(frame.id);
    const parsed = parseNativeEventId(frame.lastEventId);
    if (!parsed) throw new SluiceError('invalid_frame', { param: 'lastEventId', message: 'lastEventId: must be an event id such as AbC123:17.' });
    const { generation, identity } = await this.#dependencies.chats.findOwned(this.#principal, parsed.generationId);
    const fromSeq = parsed.seq + 1;
    const finished = generation.finished && fromSeq >= generation.events.length;
    this.#send({ type: 'resumed', id: frame.id, generationId: parsed.generationId, finished });
    if (!finished) this.#follow(frame.id, generation, identity, fromSeq);
  }

  #refuseRunningId(id: string): void {
    if (this.#chats.has(id)) throw new SluiceError('invalid_frame', { param: 'id', message: `id: chat "${id}" is still running on this socket; use a new id.` });
  }

  /** Sends a generation's events from `fromSeq` on, tagged with the chat id, until its end. */
  #follow(id: string, generation: GenerationView, identity: NativeStreamIdentity, fromSeq: number): void {
    // Set once followGeneration returns; detach may run before that (the log already held the end).
    let follower: Follower | undefined = undefined;
    let following = true;
    const chat: RunningChat = {
      cancel: () => generation.cancel(new SluiceError('cancelled', { message: 'The chat was cancelled by the client (cancel frame).' })),
      detach: (cancelGeneration) => {
        if (!following) return;
        following = false;
        this.#chats.delete(id);
        if (cancelGeneration) generation.cancel(new SluiceError('cancelled', { message: 'The chat was cancelled.' }));
        follower?.stop();
      },
    };
    // In the map before the first read: a generation that already ended detaches at once.
    this.#chats.set(id, chat);
    const ws = this.#ws;
    const sendAll = (frames: readonly string[]): void => {
      for (const frame of frames) this.#send(frame);
    };
    follower = followGeneration({
      generation,
      fromSeq,
      maxBufferedBytes: this.#config.server.maxBufferedBytes,
      encode: (event, seq) => {
        const native = toNativeEvent(event, identity);
        if (!native) return '';
        const frame: ServerFrame = { type: native.name, id, eventId: nativeEventId(identity.generationId, seq), data: native.data };
        return JSON.stringify(frame);
      },
      sink: {
        // ws queues every frame it is given: nothing is held back in the log, its buffer is what counts.
        blocked: false,
        get bufferedBytes() {
          return ws.bufferedAmount;
        },
        write: sendAll,
        end(frames) {
          sendAll(frames);
          chat.detach(false);
        },
        tooSlow: () => this.#closeTooSlow(),
      },
    });
    // The socket closed while the chat was admitted or its generation looked up, so #onClose ran
    // before this chat existed: it leaves now as the close would have made it leave (a resumable
    // generation then gets its resumeGraceMs, and is cancelled when nobody resumes it).
    if (ws.readyState !== ws.OPEN) chat.detach(this.#config.websocket.cancelChatsOnClose);
  }

  #deliverPush(message: PushMessage, replayed: boolean): boolean {
    if (this.#ws.readyState !== this.#ws.OPEN) return false;
    if (!replayed && this.#ws.bufferedAmount > this.#config.server.maxBufferedBytes) {
      this.#closeTooSlow();
      return false;
    }
    // One Buffer per message for every socket: a text frame from bytes encoded once, not per socket
    // (docs/decisions/0028-websocket-push-bytes.md). The readyState was checked above.
    this.#ws.send(pushFrame(message), { binary: false });
    return true;
  }

  #closeForHub(reason: HubCloseReason): void {
    // 4000: closed by an admin, do not reconnect; 1012 (service restart): reconnect elsewhere.
    this.#ws.close(reason.code === 'shutting_down' ? 1012 : 4000, reason.message.slice(0, 120));
  }

  #closeTooSlow(): void {
    const error = new SluiceError('client_too_slow', { message: `The client left more than ${this.#config.server.maxBufferedBytes.toString()} bytes unread (server.maxBufferedBytes); the socket was closed.` });
    for (const chat of [...this.#chats.values()]) chat.detach(true);
    this.#ws.close(1008, error.message.slice(0, 120));
  }

  #frameFailed(error: unknown, raw: RawData): void {
    const failure = toSluiceError(error);
    if (failure.code === 'internal_error') this.#dependencies.logger.error({ err: failure.cause ?? failure, userId: this.#principal.userId }, 'websocket frame failed');
    const id = frameIdOf(raw);
    this.#send({ type: 'error', ...(id !== undefined ? { id } : {}), code: failure.code, message: failure.message, ...(failure.param !== undefined ? { param: failure.param } : {}) });
  }

  #send(frame: ServerFrame | string): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }
}
