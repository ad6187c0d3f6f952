// Counting what every node reached. A push or a disconnect is published once; each node that
// received it replies with how many of its connections it reached, and the origin waits for as
// many replies as PUBLISH said it had receivers, or until the deadline
// (docs/decisions/0009-redis-hub.md, "Counting connections on every node").
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../observability/logger.js';
import type { RedisConnections } from '../../redis/connection.js';
import { SluiceError } from '../../errors/sluice-error.js';
import type { HubKeys } from './keys.js';
import { hubUnavailable, type Reply } from './wire.js';

export interface ReplyCounterOptions {
  /** Where replies to other nodes are published (sharded on a Redis Cluster). */
  readonly redis: Pick<RedisConnections, 'publish'>;
  readonly keys: HubKeys;
  readonly nodeId: string;
  /** How long gather() waits for the replies, in ms; a node that has not replied by then counts 0. */
  readonly replyTimeoutMs: number;
  readonly logger: Logger;
}

interface PendingRequest {
  /** Distinct nodes that replied. */
  readonly replied: Set<string>;
  total: number;
  /** Subscribers that received the request (PUBLISH's answer); unknown until it returns. */
  receivers: number | undefined;
  readonly finish: () => void;
}

export class ReplyCounter {
  readonly #options: ReplyCounterOptions;
  readonly #pending = new Map<string, PendingRequest>();

  constructor(options: ReplyCounterOptions) {
    this.#options = options;
  }

  /**
   * Publishes a request (through `send`, which resolves to PUBLISH's receiver count) and waits
   * for one reply from each node that received it, or until the deadline: the sum of the counts.
   * Rejects with `send`'s SluiceError, or store_unavailable for any other failure.
   */
  async gather<T>(send: (request: string) => Promise<{ result: T; receivers: number }>): Promise<{ result: T; total: number }> {
    const request = randomUUID();
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const entry: PendingRequest = { replied: new Set(), total: 0, receivers: undefined, finish };
    // Registered before sending: a fast node's reply may arrive before PUBLISH's own answer.
    this.#pending.set(request, entry);
    try {
      const { result, receivers } = await send(request);
      entry.receivers = receivers;
      if (entry.replied.size < receivers) {
        const timer = setTimeout(finish, this.#options.replyTimeoutMs);
        await done;
        clearTimeout(timer);
      }
      return { result, total: entry.total };
    } catch (error) {
      throw error instanceof SluiceError ? error : hubUnavailable(error);
    } finally {
      this.#pending.delete(request);
    }
  }

  /** Sends `count` for `request` to the node that asked (this one included, without a round trip). */
  answer(origin: string, request: string, count: number): void {
    const { redis, keys, nodeId, logger } = this.#options;
    if (origin === nodeId) {
      this.receive({ request, node: nodeId, count });
      return;
    }
    redis.publish(keys.replyChannel(origin), JSON.stringify({ request, node: nodeId, count })).catch((error: unknown) => {
      logger.warn({ err: error, origin }, 'hub: could not reply to another node; it counts no connections here');
    });
  }

  /** A node's reply to one of this node's requests. */
  receive(reply: Reply): void {
    const request = this.#pending.get(reply.request);
    // Late (after the deadline) or a repeat: already settled without it.
    if (!request || request.replied.has(reply.node)) return;
    request.replied.add(reply.node);
    request.total += reply.count;
    if (request.receivers !== undefined && request.replied.size >= request.receivers) request.finish();
  }

  /** Settles every waiting request with what it has (shutdown). */
  finishAll(): void {
    for (const request of this.#pending.values()) request.finish();
  }
}
