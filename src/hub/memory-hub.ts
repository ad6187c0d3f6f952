// The single-node hub: connections in this process, the push sequence a counter, replay from
// memory. Right for one instance (docs/deployment.md, "What lives where"); a cluster replaces it
// with a hub that keeps the same connection registry and moves the sequence, the logs and the
// fan-out to Redis (src/hub/redis-hub/, decision 0009).
import { hostname } from 'node:os';
import { closeConnections, createConnectionRegistry, disconnectedReason, shuttingDownReason } from './connection-registry.js';
import { defaultHubRetention, isPushEventName, isPushId, type Hub, type HubRetention, type PushMessage } from './hub.js';
import { createMemoryPushLog } from './push-log.js';

export interface MemoryHubOptions {
  /** Milliseconds since the epoch; must never go backwards. */
  readonly now: () => number;
  /** What ConnectionInfo.node shows. Default `<hostname>:<pid>`. */
  readonly nodeId?: string;
  /** What is kept for replay; each field defaults to {@link defaultHubRetention}'s. */
  readonly retention?: Partial<HubRetention>;
  /** How often aged-out users are forgotten; see MemoryPushLogOptions.sweepIntervalMs. */
  readonly sweepIntervalMs?: number;
}

export interface MemoryHub extends Hub {
  /** Users with messages retained for replay (memory stays bounded: tests watch this). */
  readonly retainedUsers: number;
}


/**
 * Creates a hub in this process's memory. Its first id is one more than the clock at creation (in
 * ms), so a restarted node's ids are greater than those it gave before (unless it averaged more
 * than 1000 pushes a second) and a client's Last-Event-ID from before the restart replays
 * everything retained since.
 */
export function createMemoryHub(options: MemoryHubOptions): MemoryHub {
  const { now } = options;
  const nodeId = options.nodeId ?? `${hostname()}:${process.pid.toString()}`;
  const retention: HubRetention = { ...defaultHubRetention, ...options.retention };
  const registry = createConnectionRegistry(nodeId);
  const log = createMemoryPushLog({ now, retention, ...(options.sweepIntervalMs !== undefined ? { sweepIntervalMs: options.sweepIntervalMs } : {}) });
  let seq = now();

  return {
    nodeId,
    get retainedUsers() {
      return log.retainedUsers;
    },
    async register(connection) {
      registry.add(connection);
    },
    async unregister(connection) {
      registry.remove(connection);
    },
    async push(target, event, data) {
      if (!isPushEventName(event)) throw new TypeError(`"${event}" cannot name a push: use 1 to 64 of A-Z a-z 0-9 . _ : - and not error or close.`);
      const json = JSON.stringify(data) as string | undefined;
      if (json === undefined) throw new TypeError('Push data must be a JSON value.');
      const id = ++seq;
      const message: PushMessage = { id: id.toString(), event, json, pushedAt: now() };
      log.append(target, id, message);
      return { id: message.id, connections: registry.deliver(target, message) };
    },
    async replay(userId, lastEventId) {
      if (!isPushId(lastEventId)) throw new TypeError('lastEventId must be decimal digits (a push id).');
      const after = Number(lastEventId);
      // Ahead of the sequence: the client saw a previous life of this node, so all is news.
      return log.since(userId, after > seq ? -1 : after);
    },
    async connections(userId) {
      return registry.list(userId);
    },
    async counts() {
      return registry.counts();
    },
    async disconnect(userId) {
      return closeConnections(registry.takeUser(userId), disconnectedReason);
    },
    async closeLocal() {
      return closeConnections(registry.takeAll(), shuttingDownReason);
    },
  };
}
