// The registry's per-user index changes shape with the user's connection count (the connection
// itself for one, a set for more; decision 0036): pushes, lists, counts and removals must see the
// same connections whichever shape it has, through every change between the two.
import { describe, expect, it } from 'vitest';
import { createConnectionRegistry } from './connection-registry.js';
import type { HubConnection, PushMessage } from './hub.js';

function connection(id: string, userId: string, openedAt: number): HubConnection & { readonly got: string[] } {
  const got: string[] = [];
  return { id, userId, transport: 'sse', openedAt, got, deliver: (message: PushMessage) => (got.push(message.id), true), close: () => undefined };
}

const message = (id: string): PushMessage => ({ id, event: 'note', json: '1', pushedAt: 0 });

describe('connection registry: one user, one connection or many', () => {
  it('reaches exactly the user\'s connections as they grow from one to three and shrink back to none', () => {
    const registry = createConnectionRegistry('node-a');
    const [a1, a2, a3, b1] = [connection('a1', 'alice', 1), connection('a2', 'alice', 2), connection('a3', 'alice', 3), connection('b1', 'bob', 4)];
    registry.add(a1);
    registry.add(b1);
    expect(registry.deliver({ users: ['alice'] }, message('1'))).toBe(1);
    registry.add(a2);
    registry.add(a3);
    expect(registry.deliver({ users: ['alice', 'alice'] }, message('2'))).toBe(3);
    expect(registry.counts()).toEqual({ total: 4, byUser: { alice: 3, bob: 1 } });
    expect(registry.list('alice').map((info) => info.id)).toEqual(['a1', 'a2', 'a3']);

    expect(registry.remove(a1)).toBe(true);
    expect(registry.remove(a1)).toBe(false);
    expect(registry.remove(a3)).toBe(true);
    // Down to one again: the index holds a2 alone, and still finds it.
    expect(registry.deliver({ users: ['alice'] }, message('3'))).toBe(1);
    expect(registry.counts()).toEqual({ total: 2, byUser: { alice: 1, bob: 1 } });
    registry.add(a1);
    expect(registry.list('alice').map((info) => info.id)).toEqual(['a1', 'a2']);
    expect(registry.deliver({ users: ['alice'] }, message('4'))).toBe(2);

    expect(a1.got).toEqual(['1', '2', '4']);
    expect(a2.got).toEqual(['2', '3', '4']);
    expect(a3.got).toEqual(['2']);
    expect(b1.got).toEqual([]);

    expect(registry.takeUser('alice').map((taken) => taken.id).sort()).toEqual(['a1', 'a2']);
    expect(registry.deliver({ users: ['alice'] }, message('5'))).toBe(0);
    expect(registry.counts()).toEqual({ total: 1, byUser: { bob: 1 } });
    expect(registry.takeUser('bob')).toEqual([b1]);
    expect(registry.counts()).toEqual({ total: 0, byUser: {} });
  });

  it('does not remove a different connection that carries a removed one\'s id', () => {
    const registry = createConnectionRegistry('node-a');
    const first = connection('same', 'alice', 1);
    registry.add(first);
    expect(() => registry.add(connection('same', 'alice', 2))).toThrow(/already registered/);
    expect(registry.remove(connection('same', 'alice', 3))).toBe(false);
    expect(registry.list()).toHaveLength(1);
  });

  it('lets a connection that unregisters while a push is delivered leave without disturbing it', () => {
    const registry = createConnectionRegistry('node-a');
    const second = connection('a2', 'alice', 2);
    const first: HubConnection = { ...connection('a1', 'alice', 1), deliver: () => (registry.remove(first), registry.remove(second), true) };
    registry.add(first);
    registry.add(second);
    expect(registry.deliver({ users: ['alice'] }, message('1'))).toBe(2);
    expect(second.got).toEqual(['1']);
    expect(registry.size).toBe(0);
  });
});
