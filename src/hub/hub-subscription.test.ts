// The replay-then-live rule every hub transport relies on, run against the memory hub: what the
// client missed comes first, in id order, then live pushes, none lost and none twice, including
// pushes that land while the connection registers or the replay is read; a close the hub asks for
// meanwhile comes after them; and the connection leaves the hub however the subscription ends.
import { describe, expect, it } from 'vitest';
import type { Hub, HubCloseReason, PushMessage } from './hub.js';
import { subscribeToHub, type HubSink } from './hub-subscription.js';
import { createMemoryHub } from './memory-hub.js';

interface Received {
  readonly id: string;
  readonly replayed: boolean;
}

/** A sink that records what it was given, and the close. */
function recordingSink(): HubSink & { received: Received[]; closed: HubCloseReason[]; log: string[] } {
  const received: Received[] = [];
  const closed: HubCloseReason[] = [];
  const log: string[] = [];
  return {
    received,
    closed,
    log,
    deliver(message: PushMessage, replayed: boolean) {
      received.push({ id: message.id, replayed });
      log.push(`deliver ${message.id}`);
      return true;
    },
    close(reason: HubCloseReason) {
      closed.push(reason);
      log.push(`close ${reason.code}`);
    },
  };
}

let nextConnection = 0;
function connectionFor(userId: string) {
  nextConnection++;
  return { id: `c${nextConnection.toString()}`, userId, transport: 'sse' as const, openedAt: 0 };
}

/** The memory hub, with a hook run inside replay() before it reads (to push "during" the replay). */
function hubWithReplayHook(hook: (hub: Hub) => Promise<void>): Hub {
  const hub = createMemoryHub({ now: () => 1_000 });
  return {
    ...hub,
    replay: async (userId, lastEventId) => {
      await hook(hub);
      return hub.replay(userId, lastEventId);
    },
  };
}

describe('subscribeToHub: without a Last-Event-ID', () => {
  it('registers the connection, delivers live pushes, and leaves the hub on unsubscribe', async () => {
    const hub = createMemoryHub({ now: () => 1_000 });
    const sink = recordingSink();
    const { subscription, ready } = subscribeToHub({ hub, connection: connectionFor('alice'), lastEventId: undefined, sink });
    await ready;
    expect(await hub.connections('alice')).toHaveLength(1);

    const first = await hub.push({ users: ['alice'] }, 'notice', 1);
    const other = await hub.push({ users: ['bob'] }, 'notice', 2);
    expect(first.connections).toBe(1);
    expect(other.connections).toBe(0);
    expect(sink.received).toEqual([{ id: first.id, replayed: false }]);

    await subscription.unsubscribe();
    await subscription.unsubscribe();
    expect(await hub.connections('alice')).toEqual([]);
    expect((await hub.push({ users: ['alice'] }, 'notice', 3)).connections).toBe(0);
    expect(sink.received).toHaveLength(1);
  });
});

describe('subscribeToHub: replay then live', () => {
  it('delivers what was missed after the id, marked replayed, then live pushes', async () => {
    const hub = createMemoryHub({ now: () => 1_000 });
    const seen = await hub.push({ users: ['alice'] }, 'a', 1);
    const missedOwn = await hub.push({ users: ['alice'] }, 'b', 2);
    await hub.push({ users: ['bob'] }, 'not-hers', 3);
    const missedBroadcast = await hub.push({ all: true }, 'c', 4);
    const sink = recordingSink();
    const { subscription, ready } = subscribeToHub({ hub, connection: connectionFor('alice'), lastEventId: seen.id, sink });
    await ready;
    const live = await hub.push({ users: ['alice'] }, 'd', 5);
    expect(sink.received).toEqual([
      { id: missedOwn.id, replayed: true },
      { id: missedBroadcast.id, replayed: true },
      { id: live.id, replayed: false },
    ]);
    await subscription.unsubscribe();
  });

  it('delivers a push that lands during the replay once, whether or not the replay holds it', async () => {
    let inReplay: PushMessage['id'] | undefined;
    let afterReplay: PushMessage['id'] | undefined;
    let resolveAfter!: () => void;
    const hub = hubWithReplayHook(async (inner) => {
      // Registered by now: this push is held, and also in the log the replay reads.
      inReplay = (await inner.push({ users: ['alice'] }, 'during', 1)).id;
    });
    const seen = await hub.push({ users: ['alice'] }, 'seen', 0);
    const sink = recordingSink();
    const { subscription, ready } = subscribeToHub({
      hub: {
        ...hub,
        replay: async (userId, lastEventId) => {
          // The log is read, then one more push lands before the replay returns: held only.
          const replayed = await hub.replay(userId, lastEventId);
          afterReplay = (await hub.push({ users: ['alice'] }, 'after', 2)).id;
          resolveAfter();
          return replayed;
        },
      },
      connection: connectionFor('alice'),
      lastEventId: seen.id,
      sink,
    });
    await new Promise<void>((resolve) => (resolveAfter = resolve));
    // Nothing reaches the client before the replay is complete.
    expect(sink.received).toEqual([]);
    await ready;
    expect(sink.received).toEqual([
      { id: inReplay, replayed: true },
      { id: afterReplay, replayed: false },
    ]);
    await subscription.unsubscribe();
  });

  it('holds pushes that arrive while the connection registers and sends them after the replay', async () => {
    const inner = createMemoryHub({ now: () => 1_000 });
    const seen = await inner.push({ all: true }, 'seen', 0);
    const missed = await inner.push({ all: true }, 'missed', 1);
    let live: string | undefined;
    const hub: Hub = {
      ...inner,
      register: async (connection) => {
        await inner.register(connection);
        // A cluster hub can deliver before register() resolves.
        const result = await inner.push({ users: ['alice'] }, 'early', 2);
        // The memory hub retains it too, so the replay would hold it: make it a live-only one.
        live = result.id;
      },
      replay: async (userId, lastEventId) => (await inner.replay(userId, lastEventId)).filter((message) => message.id !== live),
    };
    const sink = recordingSink();
    const { subscription, ready } = subscribeToHub({ hub, connection: connectionFor('alice'), lastEventId: seen.id, sink });
    await ready;
    expect(sink.received).toEqual([
      { id: missed.id, replayed: true },
      { id: live, replayed: false },
    ]);
    await subscription.unsubscribe();
  });
});

describe('subscribeToHub: closes and failures', () => {
  it('passes on a close the hub asks for while opening only after the replay', async () => {
    const hub = hubWithReplayHook(async (inner) => {
      await inner.disconnect('alice');
    });
    const seen = await hub.push({ users: ['alice'] }, 'seen', 0);
    const missed = await hub.push({ users: ['alice'] }, 'missed', 1);
    const sink = recordingSink();
    const { subscription, ready } = subscribeToHub({ hub, connection: connectionFor('alice'), lastEventId: seen.id, sink });
    await ready;
    expect(sink.log).toEqual([`deliver ${missed.id}`, 'close disconnected']);
    expect(await hub.connections('alice')).toEqual([]);
    await subscription.unsubscribe();
  });

  it('passes on a live close at once', async () => {
    const hub = createMemoryHub({ now: () => 1_000 });
    const sink = recordingSink();
    const { subscription, ready } = subscribeToHub({ hub, connection: connectionFor('alice'), lastEventId: undefined, sink });
    await ready;
    expect(await hub.closeLocal()).toBe(1);
    expect(sink.closed.map((reason) => reason.code)).toEqual(['shutting_down']);
    await subscription.unsubscribe();
  });

  it('leaves the hub once registered when unsubscribed while registering, and delivers nothing', async () => {
    const hub = createMemoryHub({ now: () => 1_000 });
    const seen = await hub.push({ users: ['alice'] }, 'seen', 0);
    await hub.push({ users: ['alice'] }, 'missed', 1);
    const sink = recordingSink();
    const { subscription, ready } = subscribeToHub({ hub, connection: connectionFor('alice'), lastEventId: seen.id, sink });
    const left = subscription.unsubscribe();
    await ready;
    await left;
    expect(await hub.connections('alice')).toEqual([]);
    expect((await hub.push({ users: ['alice'] }, 'later', 2)).connections).toBe(0);
    expect(sink.received).toEqual([]);
  });

  it('rejects ready and leaves the hub when the replay fails, with nothing delivered', async () => {
    const hub = hubWithReplayHook(async (inner) => {
      await inner.push({ users: ['alice'] }, 'during', 1);
      throw new Error('storage down');
    });
    const sink = recordingSink();
    const { subscription, ready } = subscribeToHub({ hub, connection: connectionFor('alice'), lastEventId: '1', sink });
    await expect(ready).rejects.toThrow('storage down');
    await subscription.unsubscribe();
    expect(await hub.connections('alice')).toEqual([]);
    expect(sink.received).toEqual([]);
  });

  it('with onError, reports a failed replay and goes live with what was held', async () => {
    let during: string | undefined;
    const hub = hubWithReplayHook(async (inner) => {
      during = (await inner.push({ users: ['alice'] }, 'during', 1)).id;
      throw new Error('storage down');
    });
    const sink = recordingSink();
    const errors: string[] = [];
    const { subscription, ready } = subscribeToHub({ hub, connection: connectionFor('alice'), lastEventId: '1', sink, onError: (_error, step) => errors.push(step) });
    await ready;
    expect(errors).toEqual(['replay']);
    expect(sink.received).toEqual([{ id: during, replayed: false }]);
    expect(await hub.connections('alice')).toHaveLength(1);
    await subscription.unsubscribe();
  });

  it('rejects ready when the hub refuses the registration, or reports it with onError and goes on', async () => {
    const hub = createMemoryHub({ now: () => 1_000 });
    const connection = connectionFor('alice');
    const { subscription: first, ready: firstReady } = subscribeToHub({ hub, connection, lastEventId: undefined, sink: recordingSink() });
    await firstReady;
    await expect(subscribeToHub({ hub, connection, lastEventId: undefined, sink: recordingSink() }).ready).rejects.toThrow();

    const errors: string[] = [];
    const seen = await hub.push({ users: ['alice'] }, 'seen', 0);
    const missed = await hub.push({ users: ['alice'] }, 'missed', 1);
    const sink = recordingSink();
    const { subscription: tolerant, ready: tolerantReady } = subscribeToHub({ hub, connection, lastEventId: seen.id, sink, onError: (_error, step) => errors.push(step) });
    await tolerantReady;
    expect(errors).toEqual(['register']);
    // Not registered, so no live pushes; the replay still comes.
    expect(sink.received).toEqual([{ id: missed.id, replayed: true }]);
    await tolerant.unsubscribe();
    // The first connection (same id) is untouched by the second's failures.
    expect(await hub.connections('alice')).toHaveLength(1);
    await first.unsubscribe();
    expect(await hub.connections('alice')).toEqual([]);
  });
});
