// Cluster-mode generation logs: several nodes (registries, each with its own Redis connections)
// in one process share one key prefix. A generation running on one node is read on another with
// exactly its events, live; a resume gets exactly the rest; cancel crosses nodes; a dead
// producer ends followers with generation_interrupted instead of a hang; a fast stream costs few
// round trips; keys expire; and a Redis outage never breaks a stream served locally.
import { beforeAll, afterEach, describe, expect, it } from 'vitest';
import { createRedisConnections, type RedisConnections, type RedisTarget } from '../../redis/connection.js';
import { SluiceError } from '../../errors/sluice-error.js';
import { createLogger } from '../../observability/logger.js';
import type { ProviderAdapter } from '../../contract/provider.js';
import type { Candidate } from '../../routing/model-router.js';
import { redisBackends, type RedisBackend, uniqueKeyPrefix, keysUnder, deleteKeysUnder, recordCommands } from '../../../test/support/redis.js';
import { unusedPort } from '../../../test/support/tcp.js';
import { Generation, type GenerationView } from '../generation.js';
import type { GenerationInfo } from '../generation-registry.js';
import { createRedisGenerationRegistry, type RedisGenerationRegistry, type RedisGenerationRegistryOptions } from './redis-generation-registry.js';
import { generationKeys } from './keys.js';
import { encodeEntry } from './log-format.js';
import { nodesKey } from '../../redis/node-presence.js';
import { parseEvent } from './wire.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { scriptedAdapter, type Script } from '../../../test/support/scripted-adapter.js';

const backends = await redisBackends();
/** The backend the running describe block tests (the blocks run one after another). */
let backend: RedisBackend = backends[0]!;
const logger = createLogger('silent');

const adapter = (script: Script) => scriptedAdapter('fake', script);

const timeouts = { connectMs: 5000, firstByteMs: 5000, idleMs: 10_000, totalMs: 0 };
const text = (value: string): StreamEvent => ({ type: 'text-delta', text: value });
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves a gate the adapter waits on; rejects it when the upstream call is aborted. */
function gate(signal: AbortSignal): { wait: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const wait = new Promise<void>((resolve, reject) => {
    open = resolve;
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
  return { wait, open };
}

let serial = 0;
function startGeneration(provider: ProviderAdapter, extra: { resumeGraceMs?: number } = {}): { generation: Generation; info: GenerationInfo; leave: () => void } {
  const id = `gen-${(serial++).toString()}`;
  const candidate: Candidate = { adapter: provider, model: 'm', timeouts };
  const generation = new Generation({ id, request: { messages: [{ role: 'user', content: 'hi' }], params: {} }, candidates: [candidate], mode: 'stream', requestId: `r-${id}`, now: Date.now, ...extra });
  // A client on the producing node, as the route would have.
  const leave = generation.subscribe(() => undefined);
  return { generation, info: { id, ownerId: 'u1', model: 'demo', startedAt: Date.now() }, leave };
}

/** Waits until `check` holds, polling; fails after `timeoutMs`. */
async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** Reads a view as a client connection does: from a cursor, on each notification, until end or error. */
function collect(view: GenerationView, fromSeq = 0): Promise<StreamEvent[]> {
  return new Promise((resolve) => {
    const seen: StreamEvent[] = [];
    let cursor = fromSeq;
    let done = false;
    const pump = () => {
      while (!done && cursor < view.events.length) {
        const event = view.events[cursor++];
        if (!event) break;
        seen.push(event);
        if (event.type === 'end' || event.type === 'error') {
          done = true;
          // Deferred: pump may run inside subscribe() below, before `unsubscribe` exists.
          queueMicrotask(() => unsubscribe());
          resolve(seen);
        }
      }
    };
    const unsubscribe = view.subscribe(pump);
    pump();
  });
}

interface Node {
  redis: RedisConnections;
  registry: RedisGenerationRegistry;
}

for (const each of backends) describe.skipIf(!each.available)(`the Redis generation registry (${each.name})`, () => {
  beforeAll(() => {
    backend = each;
  });
  let keyPrefix = uniqueKeyPrefix();
  const nodes: Node[] = [];

  async function node(nodeId: string, overrides: Partial<RedisGenerationRegistryOptions> = {}, target: RedisTarget = backend.target): Promise<Node> {
    const redis = createRedisConnections({ ...target, keyPrefix, logger });
    if (target === backend.target) await redis.ready();
    const registry = createRedisGenerationRegistry({ redis, nodeId, retentionMs: 60_000, logger, now: Date.now, presenceTtlMs: 1000, followCheckMs: 150, ...overrides });
    const created = { redis, registry };
    nodes.push(created);
    // Let the first heartbeat land, so followers see the node alive.
    if (target === backend.target) await sleep(50);
    return created;
  }

  const keysOfTest = (redis: RedisConnections) => keysUnder(redis.command, keyPrefix);

  afterEach(async () => {
    const cleaner = createRedisConnections({ ...backend.target, keyPrefix, logger });
    await cleaner.ready();
    for (const { registry, redis } of nodes.splice(0)) {
      await registry.close();
      await redis.close();
    }
    const leftover = await keysOfTest(cleaner);
    if (leftover.length > 0) await deleteKeysUnder(cleaner.command, keyPrefix);
    await cleaner.close();
    keyPrefix = uniqueKeyPrefix();
  });

  it('shows a 200-event generation of node A on node B with exactly its events in order, live and after the end', async () => {
    const a = await node('a');
    const b = await node('b');
    let release: () => void = () => undefined;
    const provider = adapter(async function* (_request, context) {
      const halfway = gate(context.signal);
      release = halfway.open;
      yield [{ type: 'start', upstreamModel: 'm' }];
      for (let index = 0; index < 100; index++) {
        yield [text(`t${index.toString()} `)];
        if (index % 10 === 0) await nextTurn();
      }
      await halfway.wait;
      for (let index = 100; index < 197; index++) {
        yield [text(`t${index.toString()} `)];
        if (index % 7 === 0) await nextTurn();
      }
      yield [{ type: 'usage', usage: { promptTokens: 1, completionTokens: 197, totalTokens: 198, estimated: false } }, { type: 'end', finishReason: 'stop' }];
    });
    const { generation, info } = startGeneration(provider);
    a.registry.track(generation, info);
    await until(async () => (await b.registry.find(info.id)) !== undefined);

    const found = await b.registry.find(info.id);
    expect(found?.info).toEqual(info);
    const view = found!.generation;
    const followed = collect(view);
    await until(() => view.events.length >= 101);
    expect(view.finished).toBe(false);
    expect(view.committed).toBe(true);
    release();
    const seen = await followed;
    await generation.done;
    expect(generation.events).toHaveLength(200);
    expect(seen).toEqual(generation.events);
    expect(view.events).toEqual(generation.events);
    expect(view.finished).toBe(true);
    expect(view.bytesFrom(0)).toBe(generation.bytesFrom(0));

    // Re-attached after the end, on a third node: the whole log, finished at once.
    const c = await node('c');
    const late = await c.registry.find(info.id);
    expect(late?.generation.finished).toBe(true);
    expect(late?.generation.events).toEqual(generation.events);
  });

  it('resumes on node B from a random seq with exactly the rest, while the generation is still running', async () => {
    const a = await node('a');
    const b = await node('b');
    let release: () => void = () => undefined;
    const provider = adapter(async function* (_request, context) {
      const later = gate(context.signal);
      release = later.open;
      for (let index = 0; index < 60; index++) yield [text(`x${index.toString()}`)];
      await later.wait;
      for (let index = 60; index < 120; index++) {
        yield [text(`x${index.toString()}`)];
        await nextTurn();
      }
      yield [{ type: 'end', finishReason: 'stop' }];
    });
    const { generation, info } = startGeneration(provider);
    a.registry.track(generation, info);
    await until(async () => ((await b.registry.find(info.id))?.generation.events.length ?? 0) >= 61);
    // Each resume is its own find, as each reconnect would be; all follow the live part too.
    const fromSeqs = [0, 1 + Math.floor(Math.random() * 59), 61];
    const views = await Promise.all(fromSeqs.map(async () => (await b.registry.find(info.id))!.generation));
    const resumes = views.map((view, index) => collect(view, fromSeqs[index]));
    release();
    expect(await generation.done).toMatchObject({ outcome: 'completed' });
    const received = await Promise.all(resumes);
    for (const [index, fromSeq] of fromSeqs.entries()) expect(received[index], `from seq ${fromSeq.toString()}`).toEqual(generation.events.slice(fromSeq));
  });

  it('cancels a generation of node A from node B, and A\'s upstream call is aborted', async () => {
    const a = await node('a');
    const b = await node('b');
    const provider = adapter(async function* (_request, context) {
      yield [text('partial')];
      await gate(context.signal).wait;
    });
    const { generation, info } = startGeneration(provider);
    a.registry.track(generation, info);
    await until(async () => ((await b.registry.find(info.id))?.generation.events.length ?? 0) >= 2);
    const view = (await b.registry.find(info.id))!.generation;
    const followed = collect(view);
    expect(await b.registry.cancel(info.id, new SluiceError('cancelled', { message: 'Cancelled from node b.' }))).toBe(true);
    expect(await generation.done).toMatchObject({ outcome: 'cancelled', errorCode: 'cancelled' });
    expect(provider.calls[0]?.signal.aborted).toBe(true);
    expect((await followed).at(-1)).toEqual({ type: 'error', error: { code: 'cancelled', message: 'Cancelled from node b.', retryable: false } });
    // Finished now: nothing left to cancel, on either node; unknown ids are not running either.
    await until(async () => (await b.registry.find(info.id))?.generation.finished === true);
    expect(await b.registry.cancel(info.id, new SluiceError('cancelled'))).toBe(false);
    expect(await a.registry.cancel(info.id, new SluiceError('cancelled'))).toBe(false);
    expect(await b.registry.cancel('no-such-generation', new SluiceError('cancelled'))).toBe(false);
  });

  it('cancels through a remote view, as a client connection on node B would', async () => {
    const a = await node('a');
    const b = await node('b');
    const provider = adapter(async function* (_request, context) {
      yield [text('partial')];
      await gate(context.signal).wait;
    });
    const { generation, info } = startGeneration(provider);
    a.registry.track(generation, info);
    await until(async () => ((await b.registry.find(info.id))?.generation.committed ?? false));
    const view = (await b.registry.find(info.id))!.generation;
    view.cancel(new SluiceError('client_too_slow'));
    expect(await generation.done).toMatchObject({ outcome: 'cancelled', errorCode: 'client_too_slow' });
    expect(provider.calls[0]?.signal.aborted).toBe(true);
  });

  it('keeps a resumable generation alive while a client follows it from another node, and lets the grace timer run once it leaves', async () => {
    const a = await node('a');
    const b = await node('b');
    const provider = adapter(async function* (_request, context) {
      yield [text('partial')];
      await gate(context.signal).wait;
    });
    const { generation, info, leave } = startGeneration(provider, { resumeGraceMs: 200 });
    a.registry.track(generation, info);
    await until(async () => ((await b.registry.find(info.id))?.generation.committed ?? false));
    const view = (await b.registry.find(info.id))!.generation;
    const stopFollowing = view.subscribe(() => undefined);
    // The lease reaches node A before its client leaves.
    await sleep(100);
    leave();
    await sleep(700);
    expect(generation.finished).toBe(false);
    stopFollowing();
    expect(await generation.done).toMatchObject({ outcome: 'cancelled' });
  });

  it('does not keep an abandoned generation alive by mirroring it', async () => {
    const a = await node('a');
    const provider = adapter(async function* (_request, context) {
      yield [text('partial')];
      await gate(context.signal).wait;
    });
    const { generation, info, leave } = startGeneration(provider);
    a.registry.track(generation, info);
    await sleep(30);
    leave();
    expect(await generation.done).toMatchObject({ outcome: 'cancelled' });
  });

  it('ends a follower with every event that reached Redis, then generation_interrupted, when the producing node dies', async () => {
    const a = await node('a');
    const b = await node('b');
    let release: () => void = () => undefined;
    const provider = adapter(async function* (_request, context) {
      const after = gate(context.signal);
      release = after.open;
      for (let index = 0; index < 30; index++) yield [text(`y${index.toString()}`)];
      await after.wait;
      yield [text('never mirrored'), { type: 'end', finishReason: 'stop' }];
    });
    const { generation, info } = startGeneration(provider);
    a.registry.track(generation, info);
    await until(async () => ((await b.registry.find(info.id))?.generation.events.length ?? 0) >= 31);
    const view = (await b.registry.find(info.id))!.generation;
    const followed = collect(view);
    // Node A "dies": its Redis connections go, its timers stop, nothing is cleaned up.
    await a.redis.close();
    await a.registry.close();
    const startedAt = Date.now();
    release();
    // The stream to A's own client is not affected.
    expect(await generation.done).toMatchObject({ outcome: 'completed' });

    const events = await followed;
    expect(Date.now() - startedAt).toBeLessThan(3000);
    const inRedis = generation.events.slice(0, 31);
    expect(events.slice(0, -1)).toEqual(inRedis);
    expect(events.at(-1)).toEqual({ type: 'error', error: { code: 'generation_interrupted', message: expect.stringContaining('node a stopped before the answer finished') as unknown, retryable: true } });
    expect(view.finished).toBe(true);

    // A client re-attaching later is told the same at once.
    const again = await b.registry.find(info.id);
    expect(again?.generation.events.at(-1)).toMatchObject({ type: 'error', error: { code: 'generation_interrupted' } });
  });

  /**
   * A fast generation of `batches` reads of `perRead` one-letter deltas each (a read per turn of
   * the event loop) tracked on `producer`, finished, and read whole on `reader`.
   */
  async function mirrored(producer: Node, reader: Node, batches: number, perRead = 10): Promise<{ id: string; events: readonly StreamEvent[] }> {
    const provider = adapter(async function* () {
      for (let batch = 0; batch < batches; batch++) {
        yield Array.from({ length: perRead }, (_, index) => text(String.fromCharCode(97 + ((batch + index) % 26))));
        // Each batch is one network read: the next arrives in a later turn of the event loop.
        await nextTurn();
      }
      yield [{ type: 'end', finishReason: 'stop' }];
    });
    const { generation, info } = startGeneration(provider);
    producer.registry.track(generation, info);
    await generation.done;
    await until(async () => (await reader.registry.find(info.id))?.generation.finished === true);
    expect((await reader.registry.find(info.id))!.generation.events).toEqual(generation.events);
    return { id: info.id, events: generation.events };
  }

  it('writes a fast generation (2000 tiny deltas) in about one round trip per batch, not one per event', async () => {
    const a = await node('a', { presenceTtlMs: 15_000 });
    const b = await node('b');
    // The copy goes on the background connection (the command connection itself on a cluster).
    const commands = recordCommands(a.redis.background);
    const batches = 20;
    const { events } = await mirrored(a, b, batches, 100);
    expect(events.length).toBeGreaterThan(2000);
    const appends = commands.filter((name) => name === 'evalsha' || name === 'eval');
    // One per batch, plus the info write and the final batch; a NOSCRIPT fallback may add one.
    expect(appends.length).toBeGreaterThanOrEqual(2);
    expect(appends.length).toBeLessThanOrEqual(batches + 4);
    expect(commands.filter((name) => name === 'rpush')).toHaveLength(0);
    expect(commands.length).toBeLessThan(batches + 15);
  });

  it('copies every event exactly, whatever its text holds (newlines, U+2028, emoji, JSON, nothing)', async () => {
    const a = await node('a');
    const b = await node('b');
    const texts = ['line\nbreak', 'crlf\r\n', 'sep\u2028par\u2029', '😀 é 中', '', '{"type":"text-delta","text":"x"}\n{"y":1}', '\\n', 'tab\t\u0000nul'];
    const provider = adapter(async function* () {
      yield [{ type: 'start', upstreamModel: 'm' }];
      for (const value of texts) {
        yield [text(value)];
        await nextTurn();
      }
      // A batch of many events in one turn, then the end.
      yield [...texts.map(text), { type: 'end', finishReason: 'stop' }];
    });
    const { generation, info } = startGeneration(provider);
    a.registry.track(generation, info);
    await generation.done;
    await until(async () => (await b.registry.find(info.id))?.generation.finished === true);
    const view = (await b.registry.find(info.id))!.generation;
    expect(generation.events.flatMap((event) => (event.type === 'text-delta' ? [event.text] : []))).toEqual([...texts, ...texts]);
    expect(view.events).toEqual(generation.events);
    expect(view.bytesFrom(0)).toBe(generation.bytesFrom(0));
  });

  it('writes the compact log (a batch per entry, its event count in the meta hash) once every live node reads it', async () => {
    const a = await node('a');
    const b = await node('b');
    const { id, events } = await mirrored(a, b, 20);
    const keys = generationKeys(keyPrefix);
    const meta = await b.redis.command.hgetall(keys.meta(id));
    expect(meta).toMatchObject({ log: '2', length: events.length.toString(), finished: '1' });
    const entries = await b.redis.command.lrange(keys.events(id), 0, -1);
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.length).toBeLessThan(events.length / 5);
    expect(entries[0]).toMatch(/^0\n/);
  });

  it('writes one event per entry, as nodes of the previous version read it, while such a node is live; the compact log once it is gone', async () => {
    // A node of the previous version: in the presence's live set, but it never declares that it reads format 2.
    const live = createRedisConnections({ ...backend.target, keyPrefix, logger });
    await live.ready();
    await live.command.zadd(nodesKey(keyPrefix), Date.now() + 60_000, 'old');
    // Node a's log lines: an operator follows the switch there.
    const lines: string[] = [];
    const a = await node('a', { logger: createLogger('info', { write: (line: string) => void lines.push(line) }) });
    const b = await node('b');
    const keys = generationKeys(keyPrefix);
    const first = await mirrored(a, b, 5);
    expect(await b.redis.command.hget(keys.meta(first.id), 'log')).toBeNull();
    // What the old node reads: each entry one event's JSON, the list index its seq.
    const entries = await b.redis.command.lrange(keys.events(first.id), 0, -1);
    expect(entries.map((entry) => parseEvent(entry))).toEqual(first.events);

    await live.command.zrem(nodesKey(keyPrefix), 'old');
    await live.close();
    // A later check (every keyRefreshMs: a third of the presence TTL, 333 ms here) finds every
    // live node able to read format 2, and the logs started after it are compact.
    await until(async () => (await b.redis.command.hget(keys.meta((await mirrored(a, b, 1)).id), 'log')) === '2', 5000);
    const messages = lines.map((line) => (JSON.parse(line) as { msg: string }).msg).filter((message) => message.startsWith('generation logs:'));
    expect(messages).toEqual([
      'generation logs: node old does not read the compact layout (an earlier version); logs started from now on use one entry per event',
      'generation logs: every live node reads the compact layout (decision 0035); logs started from now on use it',
    ]);
  });

  it('follows a compact log that its producer wrote again from the start (the keys had expired), with every event once', async () => {
    const a = await node('a');
    const b = await node('b');
    const keys = generationKeys(keyPrefix);
    const id = `gen-rewritten-${(serial++).toString()}`;
    const info: GenerationInfo = { id, ownerId: 'u1', model: 'demo', startedAt: Date.now() };
    const start: StreamEvent = { type: 'start', upstreamModel: 'm' };
    const end: StreamEvent = { type: 'end', finishReason: 'stop' };
    const writer = a.redis.command;
    // Node a (alive) produces it; two batches so far.
    await writer.hset(keys.meta(id), { info: JSON.stringify(info), node: 'a', finished: '0', log: '2', length: '3' });
    await writer.rpush(keys.events(id), encodeEntry(0, [start, text('x')]), encodeEntry(2, [text('y')]));
    const view = (await b.registry.find(id))!.generation;
    expect(view.events).toEqual([start, text('x'), text('y')]);
    const followed = collect(view);
    // Written again from seq 0 in other batches, then going on: the view's entry count no longer fits.
    await writer.del(keys.events(id));
    await writer.rpush(keys.events(id), encodeEntry(0, [start, text('x'), text('y')]), encodeEntry(3, [text('z')]), encodeEntry(4, [end]));
    await writer.hset(keys.meta(id), { length: '5', finished: '1' });
    await writer.publish(keys.grew(id), '5');
    expect(await followed).toEqual([start, text('x'), text('y'), text('z'), end]);
    await writer.del(keys.meta(id), keys.events(id));
  });

  it('with flushIntervalMs, writes the info with the first events, gathers the rest, and writes the end when it comes', async () => {
    // An interval far longer than the waits below: a write that waited for it would miss them.
    const a = await node('a', { flushIntervalMs: 2000 });
    const b = await node('b');
    const commands = recordCommands(a.redis.background);
    let release: () => void = () => undefined;
    const provider = adapter(async function* (_request, context) {
      const held = gate(context.signal);
      release = held.open;
      await held.wait;
      yield [{ type: 'start', upstreamModel: 'm' }];
      // A token per read, every 10 ms, for 300 ms: 30 reads.
      for (let index = 0; index < 30; index++) {
        yield [text(`t${index.toString()} `)];
        await sleep(10);
      }
      yield [{ type: 'end', finishReason: 'stop' }];
    });
    const { generation, info } = startGeneration(provider);
    a.registry.track(generation, info);
    await sleep(100);
    // Before its first event nobody outside node a can know its id: nothing is written yet.
    expect(commands.filter((name) => name === 'evalsha' || name === 'eval')).toHaveLength(0);
    release();
    // The first event is written at once, with the info (not an interval later).
    await until(async () => (await b.registry.find(info.id)) !== undefined, 1000);
    await generation.done;
    // The end is written when it comes (not an interval later), so a follower ends with the producer.
    await until(async () => (await b.registry.find(info.id))?.generation.finished === true, 1000);
    const view = (await b.registry.find(info.id))!.generation;
    expect(view.events).toEqual(generation.events);
    const appends = commands.filter((name) => name === 'evalsha' || name === 'eval');
    // The info with the first events, then everything gathered with the end: not one write per read.
    expect(appends.length).toBeGreaterThanOrEqual(2);
    expect(appends.length).toBeLessThanOrEqual(4);
  });

  it('with flushIntervalMs, writes the info of a generation with no event yet once the interval is over', async () => {
    const a = await node('a', { flushIntervalMs: 300 });
    const b = await node('b');
    const provider = adapter(async function* (_request, context) {
      await gate(context.signal).wait; // never opened: the upstream says nothing
      yield [text('never')];
    });
    const { generation, info } = startGeneration(provider);
    a.registry.track(generation, info);
    const startedAt = performance.now();
    await until(async () => (await b.registry.find(info.id)) !== undefined, 3000);
    // Found after the interval, not before it: a slow first token still leaves it findable.
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(250);
    expect(generation.events).toHaveLength(0);
    generation.cancel();
  });

  it('with flushIntervalMs, copies an answer that ends in the turn of its first events in one write', async () => {
    const a = await node('a', { flushIntervalMs: 2000 });
    const b = await node('b');
    const commands = recordCommands(a.redis.background);
    const { generation, info } = startGeneration(adapter(async function* () {
      yield [{ type: 'start', upstreamModel: 'm' }, text('whole '), text('answer'), { type: 'end', finishReason: 'stop' }];
    }));
    a.registry.track(generation, info);
    await generation.done;
    await until(async () => (await b.registry.find(info.id))?.generation.finished === true, 1000);
    expect((await b.registry.find(info.id))!.generation.events).toEqual(generation.events);
    expect(commands.filter((name) => name === 'evalsha' || name === 'eval')).toHaveLength(1);
  });

  it('lets a finished generation\'s keys expire retentionMs after its end', async () => {
    const a = await node('a', { retentionMs: 300 });
    const b = await node('b', { retentionMs: 300 });
    const { generation, info } = startGeneration(
      adapter(async function* () {
        yield [text('short'), { type: 'end', finishReason: 'stop' }];
      }),
    );
    a.registry.track(generation, info);
    await generation.done;
    await until(async () => (await b.registry.find(info.id))?.generation.finished === true);
    const keys = await keysOfTest(b.redis);
    const generationKeys = keys.filter((key) => key.includes(info.id));
    expect(generationKeys).toHaveLength(2);
    for (const key of generationKeys) {
      const ttl = await b.redis.command.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(300);
    }
    await sleep(450);
    expect(await b.redis.command.exists(...generationKeys)).toBe(0);
    expect(await b.registry.find(info.id)).toBeUndefined();
  });

  it('with Redis down: find and cancel reject fast with store_unavailable, and a local generation still completes', async () => {
    const down = await node('down', {}, { url: `redis://127.0.0.1:${(await unusedPort()).toString()}` });
    const { generation, info } = startGeneration(
      adapter(async function* () {
        yield [text('still '), text('fine')];
        await nextTurn();
        yield [{ type: 'end', finishReason: 'stop' }];
      }),
    );
    down.registry.track(generation, info);
    expect(await generation.done).toMatchObject({ outcome: 'completed' });
    expect(generation.events.map((event) => event.type)).toEqual(['start', 'text-delta', 'text-delta', 'usage', 'end']);
    expect((await down.registry.find(info.id))?.generation).toBe(generation);

    const startedAt = performance.now();
    await expect(down.registry.find('elsewhere')).rejects.toMatchObject({ code: 'store_unavailable' });
    await expect(down.registry.cancel('elsewhere', new SluiceError('cancelled'))).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(performance.now() - startedAt).toBeLessThan(500);
  });
});
