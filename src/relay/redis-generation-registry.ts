// The generation registry of cluster mode: every generation started on this node is mirrored to
// Redis (its info, and its log as a list indexed by seq, one round trip per batch of events), so a
// client can re-attach on any node with Last-Event-ID and get exactly what it missed, then live
// events; cancellation crosses nodes through a per-node control channel; and a node presence key
// lets a reader tell "still running" from "its node died", so a follower never hangs: it gets
// every event that reached Redis, then `generation_interrupted`. Nothing here may slow down or
// break a stream served from the node that produces it: Redis failures only cost the mirror.
import { createNodePresence, nodeKey, type NodePresence } from '../redis/node-presence.js';
import type { RedisConnections } from '../redis/connection.js';
import { defineLuaScript, runLuaScript } from '../redis/lua-script.js';
import { SluiceError } from '../errors/sluice-error.js';
import { isErrorCode } from '../errors/table.js';
import type { Logger } from '../observability/logger.js';
import type { Generation, GenerationListener, GenerationView } from './generation.js';
import { EventLog } from './event-log.js';
import type { FoundGeneration, GenerationInfo, GenerationRegistry } from './generation-registry.js';
import { errorPayload, type StreamEvent, type StreamEventType } from '../contract/stream-event.js';

export interface RedisGenerationRegistryOptions {
  /** The node's Redis connections (commands and subscriptions); not closed by the registry. */
  redis: RedisConnections;
  /** This node's id, unique in the cluster (it names the presence key and the control channel). */
  nodeId: string;
  /** How long a finished generation stays attachable, in ms (the TTL of its keys). */
  retentionMs: number;
  logger: Logger;
  now: () => number;
  /**
   * Extra time, in ms, to gather events before writing a batch. Default 0: one write per turn of
   * the event loop in which the log grew (while a write is in flight, the next batch gathers
   * everything that arrives meanwhile, so a fast stream costs far fewer writes than events).
   */
  flushIntervalMs?: number;
  /**
   * This node's presence (src/cluster/node-presence.ts), shared with the hub. Absent, the
   * registry starts its own with `presenceTtlMs` and stops it on close. Followers on other nodes
   * read its key to tell a running generation from one whose node died.
   */
  presence?: NodePresence;
  /** TTL of the presence the registry starts itself, in ms: how long after a crash followers notice. Default 15000. */
  presenceTtlMs?: number;
  /** How often the TTL of running generations' keys is refreshed, in ms. Default a third of the presence TTL. */
  keyRefreshMs?: number;
  /**
   * How often a follower of a generation running on another node re-reads its log and checks
   * that node's presence, in ms (pub/sub does the fast path; this catches lost messages and dead
   * nodes). Default 1500.
   */
  followCheckMs?: number;
}

/** A GenerationRegistry backed by Redis, with the shutdown the app calls before closing Redis. */
export interface RedisGenerationRegistry extends GenerationRegistry {
  /**
   * Stops the timers and subscriptions, waits (up to 2 s) for pending mirror writes, and stops
   * the presence if the registry started it. Local generations are not cancelled (the app does
   * that first, so their last events reach Redis).
   */
  close(): Promise<void>;
}

/** Consecutive failed writes after which a generation's mirror gives up (its local stream goes on). */
const maxMirrorFailures = 10;

/**
 * Appends one batch to a generation's log, only if the log is as long as the writer believes
 * (so a retry after a lost reply never duplicates events: the list index must stay the seq),
 * sets the TTLs, marks it finished with the last batch, and tells followers the new length.
 * KEYS: meta hash, events list. ARGV: expected length, finished flag, TTL ms, channel,
 * info JSON ('' once written), node id, then the events.
 */
const appendScript = defineLuaScript(`
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'info', ARGV[5], 'node', ARGV[6], 'finished', '0')
elseif redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1, 0}
end
local length = redis.call('LLEN', KEYS[2])
if length ~= tonumber(ARGV[1]) then return {0, length} end
-- unpack() is bounded by the Lua stack: push in slices.
for first = 7, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, first, math.min(first + 999, #ARGV)))
end
length = length + #ARGV - 6
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'finished', '1') end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if length > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
redis.call('PUBLISH', ARGV[4], length)
return {1, length}
`);

/** The keys and channels of one deployment (prefix). Ids are hash-tagged so each generation's keys share a Redis Cluster slot. */
function keysFor(prefix: string) {
  return {
    meta: (id: string) => `${prefix}generation:{${id}}`,
    events: (id: string) => `${prefix}generation:{${id}}:events`,
    grew: (id: string) => `${prefix}generation:{${id}}:grew`,
    /** The presence heartbeat key of src/cluster/node-presence.ts. */
    presence: (nodeId: string) => nodeKey(prefix, nodeId),
    control: (nodeId: string) => `${prefix}generation-node:${nodeId}:control`,
  };
}

type ControlMessage =
  | { type: 'cancel'; id: string; code: string; message: string }
  /** A follower on another node holds (or renews) a lease that keeps the generation alive as a subscriber would. */
  | { type: 'attach'; id: string; viewer: string }
  | { type: 'detach'; id: string; viewer: string };

interface Mirror {
  readonly generation: Generation;
  readonly info: GenerationInfo;
  /** Events known to be in Redis: the next batch starts here. */
  written: number;
  infoWritten: boolean;
  finishedWritten: boolean;
  writing: Promise<void> | undefined;
  flushTimer: NodeJS.Timeout | undefined;
  retryTimer: NodeJS.Timeout | undefined;
  failures: number;
  gaveUp: boolean;
  stopObserving: () => void;
}

interface Lease {
  release: () => void;
  expiresAt: number;
}

export function createRedisGenerationRegistry(options: RedisGenerationRegistryOptions): RedisGenerationRegistry {
  const { redis, nodeId, retentionMs, logger, now } = options;
  const flushIntervalMs = options.flushIntervalMs ?? 0;
  const followCheckMs = options.followCheckMs ?? 1500;
  // Checked once here, so a bad value fails at start instead of as a silent hang later.
  if (nodeId === '' || /[\s{}]/.test(nodeId)) throw new Error(`redis generation registry: nodeId "${nodeId}" must be non-empty, without spaces or braces`);
  if (!(retentionMs > 0)) throw new Error('redis generation registry: retentionMs must be > 0');
  if (!(followCheckMs > 0) || !(flushIntervalMs >= 0)) throw new Error('redis generation registry: followCheckMs must be > 0 and flushIntervalMs >= 0');
  if (options.presence && options.presence.nodeId !== nodeId) throw new Error(`redis generation registry: the presence is node ${options.presence.nodeId}'s, not ${nodeId}'s`);
  const presenceTtlMs = options.presence?.ttlMs ?? options.presenceTtlMs ?? 15_000;
  const keyRefreshMs = options.keyRefreshMs ?? Math.floor(presenceTtlMs / 3);
  if (!(keyRefreshMs > 0 && keyRefreshMs < presenceTtlMs)) throw new Error('redis generation registry: keyRefreshMs must be > 0 and < the presence TTL');
  const ownsPresence = options.presence === undefined;
  const presence = options.presence ?? createNodePresence({ redis, nodeId, logger, ttlMs: presenceTtlMs });

  const keys = keysFor(redis.keyPrefix);
  const controlChannel = keys.control(nodeId);
  // While running, a generation's keys outlive a crash of this node by retentionMs.
  const runningTtlMs = retentionMs + presenceTtlMs;
  const locals = new Map<string, { info: GenerationInfo; generation: Generation }>();
  const mirrors = new Map<string, Mirror>();
  const leases = new Map<string, Lease>();
  /** Views following a remote generation, by its `grew` channel. */
  const followers = new Map<string, Set<RemoteGenerationView>>();
  let closed = false;
  let viewSerial = 0;

  const storeUnavailable = (cause?: unknown) =>
    new SluiceError('store_unavailable', { message: 'Redis is unreachable: generations running on other nodes cannot be found or cancelled until it is back.', cause });

  async function appendBatch(keys: readonly string[], args: readonly string[]): Promise<[number, number]> {
    const reply = await runLuaScript(redis.command, appendScript, keys, args);
    if (!Array.isArray(reply) || typeof reply[0] !== 'number' || typeof reply[1] !== 'number') throw new Error('redis: unexpected reply from the append script');
    return [reply[0], reply[1]];
  }

  // ---- The mirror: this node's generations, copied to Redis. ----

  function requestFlush(mirror: Mirror): void {
    if (closed || mirror.gaveUp || mirror.writing || mirror.retryTimer) return;
    if (flushIntervalMs > 0 && !mirror.generation.finished) {
      mirror.flushTimer ??= setTimeout(() => {
        mirror.flushTimer = undefined;
        startFlush(mirror);
      }, flushIntervalMs);
      return;
    }
    startFlush(mirror);
  }

  function startFlush(mirror: Mirror): void {
    if (mirror.writing) return;
    mirror.writing = flush(mirror).finally(() => {
      mirror.writing = undefined;
    });
  }

  function pending(mirror: Mirror): boolean {
    return !mirror.infoWritten || mirror.written < mirror.generation.events.length || (mirror.generation.finished && !mirror.finishedWritten);
  }

  /** Writes until Redis holds the whole log; one batch in flight at a time, so batches stay in order. */
  async function flush(mirror: Mirror): Promise<void> {
    const { generation, info } = mirror;
    try {
      while (!closed && pending(mirror)) {
        // Read before the await: `finished` is only true once the terminal event is in `events`.
        const finished = generation.finished;
        const end = generation.events.length;
        const batch = generation.events.slice(mirror.written, end).map((event) => JSON.stringify(event));
        const [status, length] = await appendBatch([keys.meta(info.id), keys.events(info.id)], [
          mirror.written.toString(),
          finished ? '1' : '0',
          (finished ? retentionMs : runningTtlMs).toString(),
          keys.grew(info.id),
          mirror.infoWritten ? '' : JSON.stringify(info),
          nodeId,
          ...batch,
        ]);
        if (status === -1) {
          // The keys expired (Redis lost them, or this node was cut off for longer than their
          // TTL): write everything again, info first.
          mirror.infoWritten = false;
          mirror.written = 0;
          continue;
        }
        mirror.infoWritten = true;
        if (status === 1) {
          mirror.written = end;
          if (finished) mirror.finishedWritten = true;
        } else if (length > mirror.written && length <= end) {
          // An earlier write landed although its reply was lost: go on from what Redis holds.
          mirror.written = length;
        } else {
          throw new Error(`the Redis log of generation ${info.id} holds ${length.toString()} events, expected ${mirror.written.toString()}`);
        }
      }
      mirror.failures = 0;
      if (mirror.finishedWritten) retire(mirror);
    } catch (error) {
      mirror.failures++;
      if (mirror.failures === 1) logger.warn({ err: error, generationId: info.id }, 'redis generation mirror: write failed; the local stream is unaffected, retrying');
      if (mirror.failures >= maxMirrorFailures) {
        mirror.gaveUp = true;
        logger.error({ generationId: info.id, failures: mirror.failures }, 'redis generation mirror: gave up; other nodes will see this generation as interrupted');
        retire(mirror);
        return;
      }
      if (closed) return;
      mirror.retryTimer = setTimeout(() => {
        mirror.retryTimer = undefined;
        requestFlush(mirror);
      }, Math.min(250 * 2 ** (mirror.failures - 1), 5000));
      mirror.retryTimer.unref();
    }
  }

  function retire(mirror: Mirror): void {
    mirror.stopObserving();
    clearTimeout(mirror.flushTimer);
    clearTimeout(mirror.retryTimer);
    mirrors.delete(mirror.info.id);
  }

  // ---- Keeping running generations' keys alive between batches (a slow upstream). ----

  async function refreshKeys(): Promise<void> {
    const running = [...mirrors.values()].filter((mirror) => mirror.infoWritten && !mirror.generation.finished);
    if (!redis.healthy || running.length === 0) return;
    const pipeline = redis.command.pipeline();
    for (const mirror of running) pipeline.pexpire(keys.meta(mirror.info.id), runningTtlMs).pexpire(keys.events(mirror.info.id), runningTtlMs);
    try {
      await pipeline.exec();
    } catch (error) {
      logger.debug({ err: error }, 'redis generation registry: refreshing TTLs failed');
    }
  }
  const keyTimer = setInterval(() => void refreshKeys(), keyRefreshMs);
  keyTimer.unref();

  // Leases of remote followers expire when their node stops renewing them (it died).
  const leaseTimer = setInterval(() => {
    const time = now();
    for (const [key, lease] of leases) {
      if (lease.expiresAt > time) continue;
      leases.delete(key);
      lease.release();
    }
  }, followCheckMs);
  leaseTimer.unref();
  const leaseMs = followCheckMs * 3;

  // ---- Pub/sub: control messages for this node, growth of followed generations. ----

  function onControl(raw: string): void {
    const message = parseControl(raw);
    if (!message) {
      logger.warn({ channel: controlChannel }, 'redis generation registry: ignored a malformed control message');
      return;
    }
    const local = locals.get(message.id);
    if (!local) return;
    const { generation } = local;
    if (message.type === 'cancel') {
      generation.cancel(new SluiceError(isErrorCode(message.code) ? message.code : 'cancelled', { message: message.message }));
      return;
    }
    const leaseKey = `${message.id}|${message.viewer}`;
    switch (message.type) {
      case 'attach': {
        if (generation.finished) return;
        const lease = leases.get(leaseKey);
        if (lease) lease.expiresAt = now() + leaseMs;
        else leases.set(leaseKey, { release: generation.subscribe(() => undefined), expiresAt: now() + leaseMs });
        return;
      }
      case 'detach': {
        const lease = leases.get(leaseKey);
        leases.delete(leaseKey);
        lease?.release();
      }
    }
  }

  const onMessage = (channel: string, message: string): void => {
    if (channel === controlChannel) {
      onControl(message);
      return;
    }
    const views = followers.get(channel);
    if (!views) return;
    const length = Number(message);
    for (const view of views) view.onGrew(length);
  };
  redis.subscriber.on('message', onMessage);

  async function subscribe(channel: string): Promise<void> {
    try {
      await redis.subscriber.subscribe(channel);
    } catch (error) {
      // The periodic re-read covers the gap; the subscription is retried when Redis is back.
      logger.debug({ err: error, channel }, 'redis generation registry: subscribe failed');
    }
  }
  void subscribe(controlChannel);
  const stopHealthWatch = redis.onHealthChange((healthy) => {
    if (!healthy || closed) return;
    void subscribe(controlChannel);
    for (const mirror of mirrors.values()) requestFlush(mirror);
    for (const [channel, views] of followers) {
      void subscribe(channel).then(() => {
        for (const view of views) view.refreshSoon();
      });
    }
  });

  async function publishControl(targetNode: string, message: ControlMessage): Promise<number> {
    return redis.command.publish(keys.control(targetNode), JSON.stringify(message));
  }

  // ---- Following a generation that runs on another node. ----

  class RemoteGenerationView implements GenerationView {
    readonly id: string;
    readonly #node: string;
    readonly #viewer = `${nodeId}#${(viewSerial++).toString()}`;
    readonly #log = new EventLog();
    readonly #listeners = new Set<GenerationListener>();
    #reading: Promise<void> | undefined;
    #readAgain = false;
    #timer: NodeJS.Timeout | undefined;
    /** When reads started failing (Redis unreachable), if they are failing. */
    #failingSince: number | undefined;

    constructor(id: string, node: string) {
      this.id = id;
      this.#node = node;
    }

    get events(): readonly StreamEvent[] {
      return this.#log.events;
    }

    get committed(): boolean {
      return this.#log.committed;
    }

    get finished(): boolean {
      return this.#log.finished;
    }

    bytesFrom(seq: number): number {
      return this.#log.bytesFrom(seq);
    }

    /**
     * Adds a listener called when the log grew (once per read from Redis). The first one starts
     * following (subscription, periodic check, a lease that keeps the producer's generation
     * alive as a local subscriber would); when the last leaves, following stops. Leaving never
     * cancels the generation: its producing node decides that, as for its own clients.
     */
    subscribe(listener: GenerationListener): () => void {
      this.#listeners.add(listener);
      if (this.#listeners.size === 1 && !this.finished) this.#follow();
      return () => {
        if (!this.#listeners.delete(listener) || this.#listeners.size > 0) return;
        this.#unfollow();
      };
    }

    /** Asks the producing node to cancel; fire and forget (the `error` event shows the outcome). */
    cancel(reason: SluiceError = new SluiceError('cancelled')): void {
      if (this.finished) return;
      publishControl(this.#node, { type: 'cancel', id: this.id, code: reason.code, message: reason.message }).catch((error: unknown) => {
        logger.warn({ err: error, generationId: this.id }, 'redis generation registry: could not send a cancel to the producing node');
      });
    }

    /** The first read, for find(): rejects with store_unavailable when Redis does not answer. */
    async open(): Promise<void> {
      await this.#readOnce(true);
    }

    /** Reads what Redis holds beyond the cursor and checks the producer is alive; never rejects. */
    async read(): Promise<void> {
      if (this.#reading) {
        this.#readAgain = true;
        return this.#reading;
      }
      this.#reading = (async () => {
        do {
          this.#readAgain = false;
          await this.#readOnce(false);
        } while (this.#readAgain && !this.finished);
      })().finally(() => {
        this.#reading = undefined;
      });
      return this.#reading;
    }

    onGrew(length: number): void {
      if (Number.isFinite(length) && length <= this.events.length) return;
      this.refreshSoon();
    }

    refreshSoon(): void {
      void this.read();
    }

    async #readOnce(strict: boolean): Promise<void> {
      if (this.finished) return;
      const before = this.events.length;
      let raw: unknown;
      let producerAlive: boolean;
      try {
        const replies = await redis.command.multi().lrange(keys.events(this.id), before, -1).exists(keys.presence(this.#node)).exec();
        const [rangeReply, presenceReply] = replies ?? [];
        if (!rangeReply || rangeReply[0] || !presenceReply || presenceReply[0]) throw rangeReply?.[0] ?? presenceReply?.[0] ?? new Error('redis: transaction aborted');
        this.#failingSince = undefined;
        raw = rangeReply[1];
        // Our own node cannot be the producer of a generation it does not hold: it restarted.
        producerAlive = presenceReply[1] === 1 && this.#node !== nodeId;
      } catch (error) {
        if (strict) throw storeUnavailable(error);
        const since = (this.#failingSince ??= now());
        // Not a hang either: a follower that cannot reach Redis for as long as a crash takes to show ends.
        if (now() - since >= presenceTtlMs) {
          this.#append({ type: 'error', error: errorPayload(storeUnavailable(error)) });
          this.#settleRead(before);
        }
        return;
      }
      try {
        for (const item of Array.isArray(raw) ? raw : []) {
          if (this.finished) break;
          this.#append(parseEvent(item));
        }
        if (!this.finished && !producerAlive) {
          this.#append({
            type: 'error',
            error: {
              code: 'generation_interrupted',
              message: `Gateway node ${this.#node} stopped before the answer finished; every event it produced up to then was delivered. Retry the request.`,
              retryable: true,
            },
          });
        }
      } catch (error) {
        logger.error({ err: error, generationId: this.id }, 'redis generation registry: unreadable generation log');
        this.#append({ type: 'error', error: errorPayload(error instanceof SluiceError ? error : new SluiceError('internal_error')) });
      }
      this.#settleRead(before);
    }

    /** After a read: stop following once finished, and tell the listeners if the log grew. */
    #settleRead(before: number): void {
      if (this.finished) this.#unfollow();
      if (this.events.length > before) for (const listener of [...this.#listeners]) listener();
    }

    #append(event: StreamEvent): void {
      this.#log.append(event);
    }

    #follow(): void {
      const channel = keys.grew(this.id);
      let views = followers.get(channel);
      if (!views) {
        views = new Set();
        followers.set(channel, views);
        // Subscribed first, read after: nothing written in between is missed.
        void subscribe(channel).then(() => this.refreshSoon());
      } else {
        this.refreshSoon();
      }
      views.add(this);
      this.#timer = setInterval(() => {
        this.refreshSoon();
        this.#renewLease();
      }, followCheckMs);
      this.#timer.unref();
      this.#renewLease();
    }

    #renewLease(): void {
      publishControl(this.#node, { type: 'attach', id: this.id, viewer: this.#viewer }).catch(() => undefined);
    }

    #unfollow(): void {
      if (this.#timer === undefined) return;
      clearInterval(this.#timer);
      this.#timer = undefined;
      publishControl(this.#node, { type: 'detach', id: this.id, viewer: this.#viewer }).catch(() => undefined);
      const channel = keys.grew(this.id);
      const views = followers.get(channel);
      views?.delete(this);
      if (views?.size === 0) {
        followers.delete(channel);
        redis.subscriber.unsubscribe(channel).catch(() => undefined);
      }
    }

    /** Stops following without telling anyone (registry shutdown). */
    stop(): void {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  return {
    track(generation, info) {
      locals.set(info.id, { info, generation });
      const mirror: Mirror = {
        generation,
        info,
        written: 0,
        infoWritten: false,
        finishedWritten: false,
        writing: undefined,
        flushTimer: undefined,
        retryTimer: undefined,
        failures: 0,
        gaveUp: false,
        stopObserving: () => undefined,
      };
      mirrors.set(info.id, mirror);
      // Observed, not subscribed: the mirror must neither keep an abandoned generation alive nor cancel it.
      mirror.stopObserving = generation.observe(() => requestFlush(mirror));
      requestFlush(mirror);
      void generation.done.then(() => {
        const timer = setTimeout(() => locals.delete(info.id), retentionMs);
        // A retained log must not keep the process alive at shutdown.
        timer.unref();
      });
    },

    async find(id) {
      const local = locals.get(id);
      if (local) return local;
      if (!redis.healthy) throw storeUnavailable();
      let meta: Record<string, string>;
      try {
        meta = await redis.command.hgetall(keys.meta(id));
      } catch (error) {
        throw storeUnavailable(error);
      }
      if (meta['info'] === undefined || meta['node'] === undefined) return undefined;
      const info = parseInfo(meta['info']);
      const view = new RemoteGenerationView(id, meta['node']);
      await view.open();
      const found: FoundGeneration = { info, generation: view };
      return found;
    },

    async cancel(id, reason) {
      const local = locals.get(id);
      if (local) {
        if (local.generation.finished) return false;
        local.generation.cancel(reason);
        return true;
      }
      if (!redis.healthy) throw storeUnavailable();
      try {
        const [node, finished] = await redis.command.hmget(keys.meta(id), 'node', 'finished');
        if (!node || finished === '1' || node === nodeId) return false;
        const receivers = await publishControl(node, { type: 'cancel', id, code: reason.code, message: reason.message });
        // Nobody listens on a dead node's channel: that generation is not running any more.
        return receivers > 0;
      } catch (error) {
        throw storeUnavailable(error);
      }
    },

    async close() {
      if (closed) return;
      clearInterval(keyTimer);
      clearInterval(leaseTimer);
      stopHealthWatch();
      for (const views of followers.values()) for (const view of views) view.stop();
      followers.clear();
      for (const lease of leases.values()) lease.release();
      leases.clear();
      // Last writes first (a cancelled generation's error event, say), then nothing more is sent.
      const writes = [...mirrors.values()].map((mirror) => mirror.writing).filter((write) => write !== undefined);
      await Promise.race([Promise.allSettled(writes), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
      closed = true;
      for (const mirror of mirrors.values()) retire(mirror);
      redis.subscriber.off('message', onMessage);
      await Promise.allSettled([redis.subscriber.unsubscribe(controlChannel), ownsPresence ? presence.stop() : Promise.resolve()]);
    },
  };
}

const eventTypes: ReadonlySet<string> = new Set<StreamEventType>(['start', 'text-delta', 'tool-call-delta', 'usage', 'end', 'error']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Events in Redis were written by a Sluice node; the check guards against a foreign or damaged key. */
function parseEvent(raw: unknown): StreamEvent {
  const value: unknown = typeof raw === 'string' ? JSON.parse(raw) : undefined;
  if (!isRecord(value) || typeof value['type'] !== 'string' || !eventTypes.has(value['type'])) {
    throw new SluiceError('internal_error', { message: 'A generation log in Redis holds an entry that is not a stream event.' });
  }
  return value as unknown as StreamEvent;
}

function parseInfo(raw: string): GenerationInfo {
  const value: unknown = JSON.parse(raw);
  if (!isRecord(value) || typeof value['id'] !== 'string' || typeof value['ownerId'] !== 'string' || typeof value['model'] !== 'string' || typeof value['startedAt'] !== 'number' || (value['conversationId'] !== undefined && typeof value['conversationId'] !== 'string')) {
    throw new SluiceError('internal_error', { message: 'A generation\'s info in Redis is malformed.' });
  }
  const info: { -readonly [K in keyof GenerationInfo]: GenerationInfo[K] } = { id: value['id'], ownerId: value['ownerId'], model: value['model'], startedAt: value['startedAt'] };
  if (typeof value['conversationId'] === 'string') info.conversationId = value['conversationId'];
  return info;
}

function parseControl(raw: string): ControlMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!isRecord(value) || typeof value['id'] !== 'string') return undefined;
  const id = value['id'];
  if (value['type'] === 'cancel' && typeof value['code'] === 'string' && typeof value['message'] === 'string') return { type: 'cancel', id, code: value['code'], message: value['message'] };
  if ((value['type'] === 'attach' || value['type'] === 'detach') && typeof value['viewer'] === 'string') return { type: value['type'], id, viewer: value['viewer'] };
  return undefined;
}
