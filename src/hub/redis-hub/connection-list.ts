// The connection lists of a cluster hub. Each node keeps `hub:node:<id>:connections`, a hash of
// its connections as JSON, which its presence heartbeat gives the presence's TTL: a node killed
// without cleanup drops out of lists within the TTL, its hash with it. A write that fails (Redis
// away) never fails the connection: it marks the list stale, and the list is rewritten whole when
// Redis is back or at the next heartbeat (docs/decisions/0009-redis-hub.md, "Presence and
// connection lists").
import type { RedisCommands } from '../../redis/connection.js';
import type { NodePresence } from '../../redis/node-presence.js';
import type { ConnectionRegistry } from '../connection-registry.js';
import type { ConnectionInfo, HubConnection } from '../hub.js';
import type { HubKeys } from './keys.js';
import { connectionInfoSchema, hubUnavailable, parseJson } from './wire.js';

export interface NodeConnectionListOptions {
  readonly command: RedisCommands;
  readonly keys: HubKeys;
  readonly nodeId: string;
  /** This node's connections: what its list mirrors. */
  readonly registry: ConnectionRegistry;
  /** This node's heartbeat: the list's TTL, and which other nodes' lists are live. */
  readonly presence: NodePresence;
}

export class NodeConnectionList {
  readonly #options: NodeConnectionListOptions;
  /** This node's hash. */
  readonly #key: string;
  /** A write of the list failed: rewrite it whole at the next chance. */
  #stale = false;

  constructor(options: NodeConnectionListOptions) {
    this.#options = options;
    this.#key = options.keys.connections(options.nodeId);
  }

  /** Adds a connection to this node's list; never rejects (a failure marks the list stale). */
  async add(connection: HubConnection): Promise<void> {
    const { command, presence } = this.#options;
    await this.#write(() => command.multi().hset(this.#key, connection.id, JSON.stringify(this.#infoOf(connection))).pexpire(this.#key, presence.ttlMs).exec());
  }

  /** Removes connections from this node's list; never rejects (a failure marks the list stale). */
  async remove(...ids: string[]): Promise<void> {
    await this.#write(() => this.#options.command.hdel(this.#key, ...ids));
  }

  /** Deletes this node's list (its connections were closed); never rejects. */
  async clear(): Promise<void> {
    await this.#write(() => this.#options.command.del(this.#key));
  }

  /** Rewrites this node's list when an earlier write failed (after each heartbeat). */
  async rewriteIfStale(): Promise<void> {
    if (this.#stale) await this.rewrite();
  }

  /** Rewrites this node's list from the registry (after an outage or a failed write); rejects when Redis does. */
  async rewrite(): Promise<void> {
    const { command, registry, presence } = this.#options;
    this.#stale = false;
    const entries = registry.list().map((info) => [info.id, JSON.stringify(info)] as const);
    const transaction = command.multi().del(this.#key);
    if (entries.length > 0) transaction.hset(this.#key, Object.fromEntries(entries)).pexpire(this.#key, presence.ttlMs);
    try {
      await transaction.exec();
    } catch (error) {
      this.#stale = true;
      throw error;
    }
  }

  /**
   * The live nodes' connections (ours from the registry, the others' from Redis), oldest first;
   * only `userId`'s when given. Rejects with store_unavailable when Redis fails.
   */
  async cluster(userId?: string): Promise<ConnectionInfo[]> {
    const { command, keys, nodeId, registry, presence } = this.#options;
    try {
      const others = (await presence.liveNodes()).filter((node) => node !== nodeId);
      const lists = others.length === 0 ? [] : ((await command.pipeline(others.map((node) => ['hvals', keys.connections(node)])).exec()) ?? []);
      const merged = registry.list(userId);
      for (const [error, values] of lists) {
        if (error) throw error;
        if (!Array.isArray(values)) continue;
        for (const value of values) {
          const info = connectionInfoSchema.safeParse(parseJson(String(value)));
          if (info.success && (userId === undefined || info.data.userId === userId)) merged.push(info.data);
        }
      }
      return merged.sort((a, b) => a.openedAt - b.openedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    } catch (error) {
      throw hubUnavailable(error);
    }
  }

  /** Runs a write to this node's list; a failure only marks the list for a rewrite. */
  async #write(write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch {
      this.#stale = true;
    }
  }

  #infoOf(connection: HubConnection): ConnectionInfo {
    return { id: connection.id, userId: connection.userId, transport: connection.transport, node: this.#options.nodeId, openedAt: connection.openedAt };
  }
}
