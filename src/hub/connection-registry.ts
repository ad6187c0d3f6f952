// The connections one node holds, indexed by user, and the fan-out of a message to them. This is
// the part of a hub that never leaves the process (sockets cannot), so the memory hub and the
// cluster hub share it: the cluster hub's subscriber hands each message it receives to deliver().
import type { ConnectionCounts, ConnectionInfo, HubCloseReason, HubConnection, PushMessage, PushTarget } from './hub.js';

export interface ConnectionRegistry {
  /** Connections currently held. */
  readonly size: number;
  /** Adds a connection. Throws Error when a connection with the same id is already held. */
  add(connection: HubConnection): void;
  /**
   * Removes a connection; true the first time it removes it. A function of the registry, not one
   * per connection: an idle connection keeps no closure of its own (decision 0029).
   */
  remove(connection: HubConnection): boolean;
  /**
   * Delivers `message` to the target's connections on this node, each once (a user named twice
   * is still one user). Returns how many took it. A transport whose `deliver` throws is counted as
   * not reached, and the others still get the message.
   */
  deliver(target: PushTarget, message: PushMessage): number;
  /** This node's connections, oldest first; only `userId`'s when given. */
  list(userId?: string): ConnectionInfo[];
  counts(): ConnectionCounts;
  /** Removes every connection of `userId` and returns them, so the caller can close them. */
  takeUser(userId: string): HubConnection[];
  /** Removes every connection on this node and returns them (shutdown). */
  takeAll(): HubConnection[];
}

/** A registry for the node `nodeId` (what ConnectionInfo.node says). */
export function createConnectionRegistry(nodeId: string): ConnectionRegistry {
  // Both indexes hold the same objects; byUser keeps targeted pushes O(connections of the user).
  // A user with one connection, the usual case, is indexed by the connection itself: a Set of one
  // would cost more than the connection's own objects (decision 0036).
  const byId = new Map<string, HubConnection>();
  const byUser = new Map<string, HubConnection | Set<HubConnection>>();

  /** A user's connections on this node, as an array that delivering may not disturb. */
  function connectionsOf(userId: string): HubConnection[] {
    const own = byUser.get(userId);
    return own === undefined ? [] : own instanceof Set ? [...own] : [own];
  }

  function remove(connection: HubConnection): boolean {
    if (byId.get(connection.id) !== connection) return false;
    byId.delete(connection.id);
    const own = byUser.get(connection.userId);
    if (own === connection) byUser.delete(connection.userId);
    else if (own instanceof Set) {
      own.delete(connection);
      const [only] = own;
      if (own.size === 1 && only !== undefined) byUser.set(connection.userId, only);
    }
    return true;
  }

  function offer(connection: HubConnection, message: PushMessage): boolean {
    try {
      return connection.deliver(message);
    } catch {
      return false;
    }
  }

  function info(connection: HubConnection): ConnectionInfo {
    return { id: connection.id, userId: connection.userId, transport: connection.transport, node: nodeId, openedAt: connection.openedAt };
  }

  return {
    get size() {
      return byId.size;
    },
    add(connection) {
      if (byId.has(connection.id)) throw new Error(`A hub connection with id "${connection.id}" is already registered.`);
      byId.set(connection.id, connection);
      const own = byUser.get(connection.userId);
      if (own === undefined) byUser.set(connection.userId, connection);
      else if (own instanceof Set) own.add(connection);
      else byUser.set(connection.userId, new Set([own, connection]));
    },
    remove,
    deliver(target, message) {
      let reached = 0;
      if ('all' in target) {
        // A snapshot: a transport may close (and unregister) a connection while we deliver.
        for (const connection of [...byId.values()]) if (offer(connection, message)) reached++;
        return reached;
      }
      for (const userId of new Set(target.users)) {
        for (const connection of connectionsOf(userId)) if (offer(connection, message)) reached++;
      }
      return reached;
    },
    list(userId) {
      const source = userId === undefined ? [...byId.values()] : connectionsOf(userId);
      return source.map(info).sort((a, b) => a.openedAt - b.openedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    },
    counts() {
      // fromEntries defines own properties, so even a user named "__proto__" is counted.
      return { total: byId.size, byUser: Object.fromEntries([...byUser].map(([userId, own]) => [userId, own instanceof Set ? own.size : 1])) };
    },
    takeAll() {
      const taken = [...byId.values()];
      for (const connection of taken) remove(connection);
      return taken;
    },
    takeUser(userId) {
      const taken = connectionsOf(userId);
      for (const connection of taken) remove(connection);
      return taken;
    },
  };
}

/** Why an admin's DELETE /api/connections/:userId closed a connection: do not reconnect. */
export const disconnectedReason: HubCloseReason = { code: 'disconnected', message: 'An administrator closed this user\'s connections.' };
/** Why a node stopping closed a connection: reconnect (to another node) with Last-Event-ID. */
export const shuttingDownReason: HubCloseReason = { code: 'shutting_down', message: 'The gateway is restarting; reconnect with Last-Event-ID.' };

/** Calls each connection's close; one that throws is already out of the registry, and the rest still close. */
export function closeConnections(connections: readonly HubConnection[], reason: HubCloseReason): number {
  for (const connection of connections) {
    try {
      connection.close(reason);
    } catch {
      // The socket's own close handler will find nothing left to remove.
    }
  }
  return connections.length;
}
