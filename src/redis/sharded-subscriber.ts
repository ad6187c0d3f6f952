// Sharded pub/sub on a Redis Cluster (SSUBSCRIBE): a channel lives on the master that serves its
// hash slot, and only there does a subscription hear it. This keeps one subscriber connection per
// master that holds a channel, subscribes each channel on its slot's master (one SSUBSCRIBE per
// channel: the channels of one call must share a slot), follows the cluster's slot map when it
// changes, and subscribes again after a reconnection (docs/decisions/0019-redis-cluster.md).
// ioredis's own `shardedSubscribers` (5.6) left connections open after quit(), which kept a
// stopping node alive; this is small enough to own.
import { Redis, type Cluster, type RedisOptions } from 'ioredis';

/** The hash slot of a key or shard channel, as Redis Cluster computes it (CRC16/XMODEM of its hash tag, mod 16384). */
export function hashSlot(name: string): number {
  const open = name.indexOf('{');
  let hashed = name;
  if (open !== -1) {
    const close = name.indexOf('}', open + 1);
    if (close > open + 1) hashed = name.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(hashed, 'utf8')) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

export class ShardedSubscriber {
  readonly #cluster: Cluster;
  readonly #settings: RedisOptions;
  readonly #onMessage: (channel: string, message: string) => void;
  readonly #onStatus: () => void;
  /** Master ("host:port") → the subscriber connection to it. */
  readonly #connections = new Map<string, Redis>();
  /** Channel → the master it is subscribed on. */
  readonly #channels = new Map<string, string>();
  #closed = false;

  /** `cluster` is the command client, whose slot map says which master serves a channel. */
  constructor(cluster: Cluster, settings: RedisOptions, onMessage: (channel: string, message: string) => void, onStatus: () => void) {
    this.#cluster = cluster;
    this.#settings = settings;
    this.#onMessage = onMessage;
    this.#onStatus = onStatus;
    cluster.on('refresh', this.#follow);
  }

  /** True while every subscriber connection is ready (and there are none yet, or all are). */
  get ready(): boolean {
    for (const connection of this.#connections.values()) if (connection.status !== 'ready') return false;
    return true;
  }

  async subscribe(channel: string): Promise<void> {
    const master = this.#masterOf(channel);
    this.#channels.set(channel, master);
    const connection = this.#connectionTo(master);
    // A new connection subscribes its channels once ready; a command before then would fail at once.
    if (connection.status !== 'ready') await readyOf(connection, 2000);
    await connection.ssubscribe(channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    const master = this.#channels.get(channel);
    this.#channels.delete(channel);
    if (master !== undefined) await this.#connections.get(master)?.sunsubscribe(channel);
  }

  close(): void {
    this.#closed = true;
    this.#cluster.off('refresh', this.#follow);
    for (const connection of this.#connections.values()) connection.disconnect();
    this.#connections.clear();
    this.#channels.clear();
  }

  #masterOf(channel: string): string {
    const master = this.#cluster.slots[hashSlot(channel)]?.[0];
    if (master === undefined) throw new Error(`redis cluster: no master known for the slot of ${channel} (the cluster is not ready)`);
    return master;
  }

  #connectionTo(master: string): Redis {
    const existing = this.#connections.get(master);
    if (existing) return existing;
    const separator = master.lastIndexOf(':');
    const connection = new Redis({
      ...this.#settings,
      host: master.slice(0, separator),
      port: Number(master.slice(separator + 1)),
      // Subscribed again below, one channel at a time: one SSUBSCRIBE of several slots' channels fails.
      autoResubscribe: false,
      connectionName: 'sluice-subscriber',
    });
    connection.on('smessage', (channel: string, message: string) => this.#onMessage(channel, message));
    connection.on('ready', () => {
      for (const [channel, on] of this.#channels) if (on === master) connection.ssubscribe(channel).catch(() => undefined);
      this.#onStatus();
    });
    connection.on('close', this.#onStatus);
    connection.on('end', this.#onStatus);
    connection.on('error', () => this.#onStatus());
    this.#connections.set(master, connection);
    return connection;
  }

  /** The slot map changed (a failover, a resharding): move each channel whose slot moved. */
  readonly #follow = (): void => {
    if (this.#closed) return;
    for (const [channel, on] of this.#channels) {
      let master: string;
      try {
        master = this.#masterOf(channel);
      } catch {
        continue;
      }
      if (master === on) continue;
      this.#channels.set(channel, master);
      this.#connections.get(on)?.sunsubscribe(channel).catch(() => undefined);
      this.#connectionTo(master).ssubscribe(channel).catch(() => undefined);
    }
  };
}

/** Resolves when `connection` is ready; rejects when it ends first or after `timeoutMs`. */
function readyOf(connection: Redis, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`redis cluster: subscriber not ready after ${timeoutMs.toString()} ms`)), timeoutMs);
    const onReady = (): void => finish();
    const onEnd = (): void => finish(new Error('redis cluster: subscriber connection ended'));
    function finish(error?: Error): void {
      clearTimeout(timer);
      connection.off('ready', onReady);
      connection.off('end', onEnd);
      if (error) reject(error);
      else resolve();
    }
    connection.once('ready', onReady);
    connection.once('end', onEnd);
  });
}
