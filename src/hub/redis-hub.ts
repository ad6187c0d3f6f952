// The cluster hub: the Hub of one Sluice node among several sharing a Redis (DESIGN.md section 5,
// decision 0009). Sockets stay in this process's connection registry, as in the memory hub; what
// moves to Redis is the push sequence (INCR on one key), the replay logs, every node's list of
// connections, and the fan-out: a push is published on one channel that every node's subscriber
// listens to, each node delivers it to its own connections and replies with how many it reached.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { createNodePresence, type NodePresence } from '../redis/node-presence.js';
import type { RedisConnections } from '../redis/connection.js';
import { SluiceError } from '../errors/sluice-error.js';
import type { Logger } from '../observability/logger.js';
import { closeConnections, createConnectionRegistry, disconnectedReason, shuttingDownReason } from './connection-registry.js';
import {
  defaultHubRetention,
  isPushEventName,
  isPushId,
  type ConnectionInfo,
  type Hub,
  type HubConnection,
  type HubRetention,
  type PushMessage,
  type PushTarget,
} from './hub.js';
import { mergeReplay, type RetainedPush } from './push-log.js';

export interface RedisHubOptions {
  /** This node's Redis connections (createRedisConnections); the hub never closes them. */
  readonly redis: RedisConnections;
  /** This node's id: unique in the cluster, short ASCII; what ConnectionInfo.node shows. */
  readonly nodeId: string;
  /** Milliseconds since the epoch: pushedAt, and the age cut on replay. */
  readonly now: () => number;
  /** What is kept for replay; each field defaults to {@link defaultHubRetention}'s. */
  readonly retention?: Partial<HubRetention>;
  /**
   * How long push() and disconnect() wait for the other nodes' replies (ms). Default 250. A node
   * that has not replied by then is counted as having reached no connection; the call never
   * waits longer.
   */
  readonly replyTimeoutMs?: number;
  /** See NodePresenceOptions.ttlMs. Default 15 000. */
  readonly presenceTtlMs?: number;
  /** See NodePresenceOptions.heartbeatIntervalMs. Default a third of the TTL. */
  readonly heartbeatIntervalMs?: number;
  readonly logger: Logger;
}

export interface RedisHub extends Hub {
  /** This node's heartbeat, which the hub started: readiness reads `presence.registered`. */
  readonly presence: NodePresence;
  /**
   * Resolves once this node listens on the hub's channels (rejects after `timeoutMs`, default
   * 5000). Until then, and whenever Redis is away, the shared calls reject with store_unavailable.
   */
  ready(timeoutMs?: number): Promise<void>;
  /**
   * Leaves the cluster (shutdown, after closeLocal): stops listening, stops the heartbeat and
   * deletes this node's presence and connection list. The Redis connections stay open.
   */
  close(): Promise<void>;
}


// What crosses Redis is checked on the way in: another node may run another version.
const pushMessageSchema = z.object({ id: z.string(), event: z.string(), json: z.string(), pushedAt: z.number() });
const targetSchema = z.union([z.object({ users: z.array(z.string()) }), z.object({ all: z.literal(true) })]);
const envelopeSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('push'), origin: z.string(), request: z.string(), target: targetSchema, message: pushMessageSchema }),
  z.object({ kind: z.literal('disconnect'), origin: z.string(), request: z.string(), userId: z.string() }),
]);
const replySchema = z.object({ request: z.string(), node: z.string(), count: z.number().int().nonnegative() });
const connectionInfoSchema = z.object({ id: z.string(), userId: z.string(), transport: z.enum(['sse', 'ws']), node: z.string(), openedAt: z.number() });

// KEYS[1] the sequence, KEYS[2] the broadcast log. ARGV: 1 key prefix of messages and user logs,
// 2 now (ms), 3 retention count, 4 retention age (ms), 5 the message's JSON after its id,
// 6 the envelope's JSON up to the message, 7 the channel, 8 '1' for a broadcast, 9.. user ids.
// One script, so the id, the retained copies and the publish are one atomic step: every node's
// subscriber receives pushes in id order, and no id is ever published without being retained.
// The message is stored once (with the retention age as its TTL) and the logs hold its id, so a
// push to 1000 users is not stored 1000 times; each log is cut to the count and expires when
// its newest message does, so idle users vanish. Keys built from ARGV are fine on one Redis (not
// on Redis Cluster, which Sluice does not support).
const pushScript = `
local id = redis.call('INCR', KEYS[1])
if id == 1 then
  -- A new (or lost) sequence starts at the clock, so ids stay above those given before a loss.
  id = math.max(1, tonumber(ARGV[2]))
  redis.call('SET', KEYS[1], string.format('%d', id))
end
local idText = string.format('%d', id)
local message = '{"id":"' .. idText .. '",' .. ARGV[5]
local count = tonumber(ARGV[3])
local ageMs = tonumber(ARGV[4])
if count > 0 and ageMs > 0 then
  redis.call('SET', ARGV[1] .. 'message:' .. idText, message, 'PX', ageMs)
  local logs = {}
  if ARGV[8] == '1' then
    logs[1] = KEYS[2]
  else
    for index = 9, #ARGV do logs[#logs + 1] = ARGV[1] .. 'user:' .. ARGV[index] end
  end
  for _, log in ipairs(logs) do
    redis.call('ZADD', log, idText, idText)
    redis.call('ZREMRANGEBYRANK', log, 0, -(count + 1))
    redis.call('PEXPIRE', log, ageMs)
  end
end
local receivers = redis.call('PUBLISH', ARGV[7], ARGV[6] .. message .. '}')
return { idText, receivers }
`;

interface PendingRequest {
  /** Distinct nodes that replied. */
  readonly replied: Set<string>;
  total: number;
  /** Subscribers that received the request (PUBLISH's answer); unknown until it returns. */
  receivers: number | undefined;
  readonly finish: () => void;
}

/** JSON.parse, with undefined for text that is not JSON (which the schema then refuses). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function unavailable(cause?: unknown): SluiceError {
  return new SluiceError('store_unavailable', {
    message: 'The hub\'s shared store (Redis) is unavailable; pushes, replays and connection lists across nodes are paused until it is back.',
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Creates the hub of node `nodeId` in a cluster sharing `redis`, and starts its subscription and
 * heartbeat (no timer keeps the process alive). Behind the same {@link Hub} interface as the
 * memory hub, so the app picks one or the other by config.
 *
 * When Redis is unreachable, push, replay, connections, counts and disconnect reject with
 * SluiceError `store_unavailable` at once (or after the 1 s command timeout if Redis stops
 * answering mid-call), while register still registers locally (a connected client keeps its
 * channel open) and closeLocal still closes; this node's connection list in Redis is rewritten
 * when Redis is back.
 */
export function createRedisHub(options: RedisHubOptions): RedisHub {
  const { redis, nodeId, now, logger } = options;
  const { command, subscriber, keyPrefix } = redis;
  const retention: HubRetention = { ...defaultHubRetention, ...options.retention };
  const replyTimeoutMs = options.replyTimeoutMs ?? 250;
  const keys = {
    sequence: `${keyPrefix}hub:seq`,
    broadcast: `${keyPrefix}hub:broadcast`,
    /** Prefix of `message:<id>` and `user:<userId>`. */
    logs: `${keyPrefix}hub:`,
    userLog: (userId: string) => `${keyPrefix}hub:user:${userId}`,
    message: (id: string) => `${keyPrefix}hub:message:${id}`,
    connections: (node: string) => `${keyPrefix}hub:node:${node}:connections`,
    eventsChannel: `${keyPrefix}hub:events`,
    replyChannel: (node: string) => `${keyPrefix}hub:replies:${node}`,
  };
  const ownConnections = keys.connections(nodeId);
  const ownReplyChannel = keys.replyChannel(nodeId);
  const registry = createConnectionRegistry(nodeId);
  const pending = new Map<string, PendingRequest>();
  let subscribed = false;
  let closed = false;
  /** A write of our connection list failed: rewrite it whole at the next chance. */
  let listStale = false;
  const subscribedListeners = new Set<() => void>();

  function infoOf(connection: HubConnection): ConnectionInfo {
    return { id: connection.id, userId: connection.userId, transport: connection.transport, node: nodeId, openedAt: connection.openedAt };
  }

  /** Rewrites this node's connection list from the registry (after an outage or a failed write). */
  async function rewriteConnectionList(): Promise<void> {
    listStale = false;
    const entries = registry.list().map((info) => [info.id, JSON.stringify(info)] as const);
    const transaction = command.multi().del(ownConnections);
    if (entries.length > 0) transaction.hset(ownConnections, Object.fromEntries(entries)).pexpire(ownConnections, presence.ttlMs);
    try {
      await transaction.exec();
    } catch (error) {
      listStale = true;
      throw error;
    }
  }

  /** Runs a write to our connection list; a failure only marks the list for a rewrite. */
  async function writeConnectionList(write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch {
      listStale = true;
    }
  }

  const presence = createNodePresence({
    redis,
    nodeId,
    ...(options.presenceTtlMs === undefined ? {} : { ttlMs: options.presenceTtlMs }),
    ...(options.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
    ownedKeys: [ownConnections],
    afterBeat: async () => {
      if (listStale) await rewriteConnectionList();
    },
    logger,
  });

  function requireRedis(): void {
    if (closed || !redis.healthy || !subscribed) throw unavailable();
  }

  /** Sends `count` for `request` to the node that asked (itself included, without a round trip). */
  function reply(origin: string, request: string, count: number): void {
    if (origin === nodeId) {
      receiveReply({ request, node: nodeId, count });
      return;
    }
    command.publish(keys.replyChannel(origin), JSON.stringify({ request, node: nodeId, count })).catch((error: unknown) => {
      logger.warn({ err: error, origin }, 'hub: could not reply to another node; it counts no connections here');
    });
  }

  function receiveReply(answer: z.infer<typeof replySchema>): void {
    const request = pending.get(answer.request);
    // Late (after the deadline) or a repeat: already settled without it.
    if (!request || request.replied.has(answer.node)) return;
    request.replied.add(answer.node);
    request.total += answer.count;
    if (request.receivers !== undefined && request.replied.size >= request.receivers) request.finish();
  }

  async function onEnvelope(envelope: z.infer<typeof envelopeSchema>): Promise<void> {
    if (envelope.kind === 'push') {
      reply(envelope.origin, envelope.request, registry.deliver(envelope.target, envelope.message));
      return;
    }
    const taken = registry.takeUser(envelope.userId);
    const count = closeConnections(taken, disconnectedReason);
    // Removed from Redis before replying, so the caller's next list no longer shows them.
    if (taken.length > 0) await writeConnectionList(() => command.hdel(ownConnections, ...taken.map((connection) => connection.id)));
    reply(envelope.origin, envelope.request, count);
  }

  function onMessage(channel: string, payload: string): void {
    // The subscriber connection may be shared with other parts of the app: only our channels.
    if (channel !== keys.eventsChannel && channel !== ownReplyChannel) return;
    const parsed = parseJson(payload);
    if (channel === ownReplyChannel) {
      const answer = replySchema.safeParse(parsed);
      if (answer.success) receiveReply(answer.data);
      else logger.warn({ channel }, 'hub: ignored a malformed reply');
      return;
    }
    const envelope = envelopeSchema.safeParse(parsed);
    if (!envelope.success) {
      logger.warn({ channel }, 'hub: ignored a malformed message (another Sluice version?)');
      return;
    }
    onEnvelope(envelope.data).catch((error: unknown) => logger.warn({ err: error }, 'hub: handling a cluster message failed'));
  }

  async function subscribe(): Promise<void> {
    try {
      await subscriber.subscribe(keys.eventsChannel, ownReplyChannel);
    } catch {
      // Redis is away; subscribing again when it is back.
      return;
    }
    if (closed) return;
    subscribed = true;
    for (const listener of [...subscribedListeners]) listener();
  }

  subscriber.on('message', onMessage);
  const stopWatchingHealth = redis.onHealthChange((healthy) => {
    if (!healthy) {
      subscribed = false;
      return;
    }
    // Back after an outage: listen again, and rewrite our list (it may have expired meanwhile,
    // or Redis may have lost its data).
    void subscribe();
    rewriteConnectionList().catch(() => {
      // Still stale: the next heartbeat tries again.
    });
  });
  void subscribe();

  /**
   * Publishes a request (through `send`, which resolves to PUBLISH's receiver count) and waits
   * for one reply from each node that received it, or until the deadline: the sum of the counts.
   */
  async function gather<T>(send: (request: string) => Promise<{ result: T; receivers: number }>): Promise<{ result: T; total: number }> {
    const request = randomUUID();
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const entry: PendingRequest = { replied: new Set(), total: 0, receivers: undefined, finish };
    // Registered before sending: a fast node's reply may arrive before PUBLISH's own answer.
    pending.set(request, entry);
    try {
      const { result, receivers } = await send(request);
      entry.receivers = receivers;
      if (entry.replied.size < receivers) {
        const timer = setTimeout(finish, replyTimeoutMs);
        await done;
        clearTimeout(timer);
      }
      return { result, total: entry.total };
    } catch (error) {
      throw error instanceof SluiceError ? error : unavailable(error);
    } finally {
      pending.delete(request);
    }
  }

  /** The live nodes' connections (ours from the registry, the others' from Redis), oldest first. */
  async function clusterConnections(userId?: string): Promise<ConnectionInfo[]> {
    requireRedis();
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
      throw unavailable(error);
    }
  }

  return {
    nodeId,
    presence,
    ready(timeoutMs = 5000) {
      if (subscribed && redis.healthy) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          subscribedListeners.delete(onSubscribed);
          reject(new Error(`hub: not listening on Redis after ${timeoutMs.toString()} ms`));
        }, timeoutMs);
        function onSubscribed(): void {
          clearTimeout(timer);
          subscribedListeners.delete(onSubscribed);
          resolve();
        }
        subscribedListeners.add(onSubscribed);
      });
    },
    async register(connection) {
      const remove = registry.add(connection);
      // Redis away: registered here all the same (pushes from other nodes cannot reach us then
      // anyway); the list is rewritten when Redis is back.
      await writeConnectionList(() => command.multi().hset(ownConnections, connection.id, JSON.stringify(infoOf(connection))).pexpire(ownConnections, presence.ttlMs).exec());
      return async () => {
        if (remove()) await writeConnectionList(() => command.hdel(ownConnections, connection.id));
      };
    },
    async push(target, event, data) {
      if (!isPushEventName(event)) throw new TypeError(`"${event}" cannot name a push: use 1 to 64 of A-Z a-z 0-9 . _ : - and not error or close.`);
      const json = JSON.stringify(data) as string | undefined;
      if (json === undefined) throw new TypeError('Push data must be a JSON value.');
      requireRedis();
      const normalised: PushTarget = 'all' in target ? { all: true } : { users: [...new Set(target.users)] };
      const { result: id, total } = await gather(async (request) => {
        const pushedAt = now();
        const messageRest = JSON.stringify({ event, json, pushedAt }).slice(1);
        const envelopeHead = `${JSON.stringify({ kind: 'push', origin: nodeId, request, target: normalised }).slice(0, -1)},"message":`;
        const users = 'all' in normalised ? [] : normalised.users;
        const answer = await command.eval(
          pushScript,
          2,
          keys.sequence,
          keys.broadcast,
          keys.logs,
          pushedAt.toString(),
          retention.count.toString(),
          retention.ageMs.toString(),
          messageRest,
          envelopeHead,
          keys.eventsChannel,
          'all' in normalised ? '1' : '0',
          ...users,
        );
        if (!Array.isArray(answer)) throw new Error('hub: unexpected reply to the push script.');
        return { result: String(answer[0]), receivers: Number(answer[1]) };
      });
      return { id, connections: total };
    },
    async replay(userId, lastEventId) {
      if (!isPushId(lastEventId)) throw new TypeError('lastEventId must be decimal digits (a push id).');
      requireRedis();
      try {
        const answers = (await command.pipeline().get(keys.sequence).zrange(keys.userLog(userId), 0, -1).zrange(keys.broadcast, 0, -1).exec()) ?? [];
        for (const [error] of answers) if (error) throw error;
        const sequence = Number(answers[0]?.[1] ?? 0);
        const ids = (index: number): string[] => {
          const value = answers[index]?.[1];
          return Array.isArray(value) ? value.map(String) : [];
        };
        const ownIds = ids(1);
        const broadcastIds = ids(2);
        const wanted = [...new Set([...ownIds, ...broadcastIds])];
        const stored = wanted.length === 0 ? [] : await command.mget(...wanted.map(keys.message));
        const at = now();
        const messages = new Map<string, PushMessage>();
        stored.forEach((text, index) => {
          if (text === null) return; // aged out in Redis
          const parsed = pushMessageSchema.safeParse(parseJson(text));
          // The same age rule as the memory log, by the hub's clock (Redis's TTL is the backstop).
          if (parsed.success && at - parsed.data.pushedAt <= retention.ageMs) messages.set(wanted[index] ?? '', parsed.data);
        });
        const retained = (list: readonly string[]): RetainedPush[] =>
          list.flatMap((id) => {
            const message = messages.get(id);
            return message ? [{ seq: Number(id), message }] : [];
          });
        const after = Number(lastEventId);
        // Ahead of the sequence: the client saw the ids of a Redis that has since lost its data.
        return mergeReplay(retained(ownIds), retained(broadcastIds), after > sequence ? -1 : after, retention.count);
      } catch (error) {
        throw unavailable(error);
      }
    },
    connections: clusterConnections,
    async counts() {
      const all = await clusterConnections();
      const byUser = new Map<string, number>();
      for (const info of all) byUser.set(info.userId, (byUser.get(info.userId) ?? 0) + 1);
      // fromEntries defines own properties, so even a user named "__proto__" is counted.
      return { total: all.length, byUser: Object.fromEntries(byUser) };
    },
    async disconnect(userId) {
      requireRedis();
      const { total } = await gather(async (request) => {
        const receivers = await command.publish(keys.eventsChannel, JSON.stringify({ kind: 'disconnect', origin: nodeId, request, userId }));
        return { result: undefined, receivers };
      });
      return total;
    },
    async closeLocal() {
      const count = closeConnections(registry.takeAll(), shuttingDownReason);
      await writeConnectionList(() => command.del(ownConnections));
      return count;
    },
    async close() {
      if (closed) return;
      closed = true;
      subscribed = false;
      stopWatchingHealth();
      subscriber.off('message', onMessage);
      for (const request of pending.values()) request.finish();
      await subscriber.unsubscribe(keys.eventsChannel, ownReplyChannel).catch(() => undefined);
      await presence.stop();
    },
  };
}
