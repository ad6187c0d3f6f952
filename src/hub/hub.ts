// The per-user connection hub: what the transports (SSE and WebSocket, each through
// hub-subscription.ts) register their connections in, and what POST /api/push,
// GET /api/connections and DELETE /api/connections/:userId talk to. Only types and the rules every
// implementation shares live here; the memory hub is one implementation and the cluster (Redis)
// hub another behind the same interface, so every method is async and everything that crosses it
// is plain, JSON-serialisable data.

/** How a connection reaches its client. */
export type HubTransport = 'sse' | 'ws';

/** Who a push is for: named users, or every connected user. */
export type PushTarget = { readonly users: readonly string[] } | { readonly all: true };

/**
 * One pushed message as transports deliver it and replay returns it. Plain data (no functions,
 * no Dates), so a cluster hub can publish and store it as JSON as it is.
 */
export interface PushMessage {
  /**
   * The hub-wide sequence number in decimal digits: the SSE `id:` and what `Last-Event-ID` sends
   * back. One sequence orders user-targeted and broadcast pushes alike (decision 0008).
   */
  readonly id: string;
  /** The event name (1 to 64 of `A-Z a-z 0-9 . _ : -`; see {@link isPushEventName}). */
  readonly event: string;
  /**
   * The pushed data, serialised once as JSON text by the hub, so a broadcast to thousands of
   * connections is not serialised once per connection. Transports embed it as it is.
   */
  readonly json: string;
  /** When the hub accepted the push, in milliseconds since the epoch. */
  readonly pushedAt: number;
}

/** Why the hub asks a transport to close a connection. */
export interface HubCloseReason {
  /**
   * `disconnected`: an admin closed the user's connections (DELETE /api/connections/:userId); the
   * client should not reconnect. `shutting_down`: this node is stopping; the client should
   * reconnect (to another node) with Last-Event-ID.
   */
  readonly code: 'disconnected' | 'shutting_down';
  /** For people: shown in the transport's last frame. */
  readonly message: string;
}

/**
 * What a transport hands the hub for each open client connection. The transport owns the socket:
 * it supplies the id and the two callbacks, and calls the hub's `unregister` when the socket
 * closes, whatever closed it.
 */
export interface HubConnection {
  /** Unique among the hub's connections (on every node); short ASCII. */
  readonly id: string;
  /** The authenticated user the connection belongs to. */
  readonly userId: string;
  readonly transport: HubTransport;
  /** When the client connected, in milliseconds since the epoch. */
  readonly openedAt: number;
  /**
   * Sends one message to the client, or queues it behind what is unsent. Must not throw and must
   * not block: a transport with a slow client bounds its own queue and drops the connection when
   * it is too far behind. Returns false when the connection could not take the message (already
   * closing), so that it is not counted as reached.
   */
  deliver(message: PushMessage): boolean;
  /**
   * Ends the connection: the transport sends its last frame (SSE: a `close` event; WebSocket: a
   * close frame) and closes. The hub has already removed the connection when it calls this.
   * Must not throw.
   */
  close(reason: HubCloseReason): void;
}

/** A connection as GET /api/connections lists it: the data of a {@link HubConnection}, plus its node. */
export interface ConnectionInfo {
  readonly id: string;
  readonly userId: string;
  readonly transport: HubTransport;
  /** The id of the node (process) holding the socket. */
  readonly node: string;
  /** Milliseconds since the epoch. */
  readonly openedAt: number;
}

export interface ConnectionCounts {
  readonly total: number;
  /** Open connections by user id; users with none are absent. */
  readonly byUser: Readonly<Record<string, number>>;
}

export interface PushResult {
  /** The message's id (its sequence number, decimal). */
  readonly id: string;
  /** How many connections the message was delivered to, on every node. */
  readonly connections: number;
}

/** How much the hub keeps for replay. */
export interface HubRetention {
  /**
   * At most this many of the newest messages a user was sent (their own and broadcasts together)
   * are kept for replay. 0 keeps nothing. Default 100.
   */
  readonly count: number;
  /** Messages older than this (milliseconds) are dropped. 0 keeps nothing. Default 300 000 (5 min). */
  readonly ageMs: number;
}

export const defaultHubRetention: HubRetention = Object.freeze({ count: 100, ageMs: 5 * 60_000 });

export interface Hub {
  /** This node's id, as ConnectionInfo.node shows it. */
  readonly nodeId: string;
  /**
   * Adds a connection: from now on pushes for its user reach it, until {@link unregister} removes
   * it (call that when the socket closes). Rejects when a connection with the same id is already
   * registered. It does not reject because shared storage is unavailable:
   * the cluster hub then registers the connection on its node all the same (its client keeps the
   * channel, and pushes reach it again once storage is back) and writes its shared entry later
   * (decision 0009).
   */
  register(connection: HubConnection): Promise<void>;
  /**
   * Removes a connection `register` added; idempotent, and does nothing for a connection it does
   * not hold. A method of the hub rather than a function per connection, so that an idle
   * connection keeps no closure of its own (decision 0029).
   */
  unregister(connection: HubConnection): Promise<void>;
  /**
   * Assigns the next id, retains the message for replay, and delivers it to the target's open
   * connections (on every node, for a cluster hub). `data` must be JSON-serialisable (it is
   * serialised once, here); a value JSON cannot represent throws TypeError. Users who are not
   * connected still get the message retained, to replay when they connect.
   */
  push(target: PushTarget, event: string, data: unknown): Promise<PushResult>;
  /**
   * What `userId` was sent after `lastEventId` (decimal digits) and is still retained: their own
   * messages and broadcasts merged, in id order, each once. An id ahead of the hub's sequence
   * comes from before a restart of a hub that lost its memory, so everything retained is newer
   * than what that client saw and all of it is returned. Throws TypeError when `lastEventId` is
   * not digits.
   */
  replay(userId: string, lastEventId: string): Promise<PushMessage[]>;
  /** Open connections (every node's, for a cluster hub), oldest first; only `userId`'s when given. */
  connections(userId?: string): Promise<ConnectionInfo[]>;
  counts(): Promise<ConnectionCounts>;
  /** Closes every connection `userId` has (calling each one's `close`); resolves to how many. */
  disconnect(userId: string): Promise<number>;
  /** Closes this node's connections with `shutting_down`, so their clients reconnect elsewhere (shutdown). */
  closeLocal(): Promise<number>;
}

const pushEventNamePattern = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * Event names the hub's transports use for their own frames, which a push may not imitate: `error`
 * (a stream ended by a failure such as client_too_slow) and `close` (the server ended the stream;
 * its data says whether to reconnect).
 */
export const reservedPushEventNames: readonly string[] = ['error', 'close'];

/**
 * True when `name` may name a push: 1 to 64 characters of `A-Z a-z 0-9 . _ : -` (so never CR or
 * LF, which would break an SSE `event:` line), and not one of {@link reservedPushEventNames}.
 */
export function isPushEventName(name: string): boolean {
  return pushEventNamePattern.test(name) && !reservedPushEventNames.includes(name);
}

/** Push ids are decimal sequence numbers that fit a JavaScript number exactly. */
const pushIdPattern = /^\d{1,15}$/;

/** True when `value` is a well-formed push id (what a client's `Last-Event-ID` must be). */
export function isPushId(value: string): boolean {
  return pushIdPattern.test(value);
}
