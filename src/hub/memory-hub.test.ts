// What only the memory hub promises, beyond the contract every hub keeps (hub-contract.test.ts):
// its ids start above the clock, so a restarted node (which forgot everything) never reuses one;
// memory stays bounded (users with nothing retained are forgotten, and nothing is kept when
// retention is 0); and the storage-neutral replay rule both hubs apply.
import { describe, expect, it } from 'vitest';
import { isPushId } from './hub.js';
import { createMemoryHub } from './memory-hub.js';
import { mergeReplay, type RetainedPush } from './push-log.js';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let time = start;
  return { now: () => time, advance: (ms) => (time += ms) };
}

describe('memory hub: ids across restarts', () => {
  it('starts its ids above the clock at creation, so a restarted node never reuses one', async () => {
    const before = createMemoryHub({ now: () => 5_000 });
    const lastBefore = await before.push({ all: true }, 'x', 1);
    const after = createMemoryHub({ now: () => 9_000 });
    const firstAfter = await after.push({ all: true }, 'x', 1);
    expect(Number(firstAfter.id)).toBeGreaterThan(Number(lastBefore.id));
    expect(isPushId(firstAfter.id)).toBe(true);
  });
});

describe('memory hub: bounded memory', () => {
  it('forgets users whose messages all aged out, so memory stays bounded', async () => {
    const time = clock();
    const hub = createMemoryHub({ now: time.now, retention: { ageMs: 1000 }, sweepIntervalMs: 500 });
    for (let index = 0; index < 1000; index++) await hub.push({ users: [`user-${index.toString()}`] }, 'x', index);
    expect(hub.retainedUsers).toBe(1000);
    time.advance(1500);
    // A push to someone else is enough to run the sweep; no timer is involved.
    await hub.push({ users: ['fresh'] }, 'x', 0);
    expect(hub.retainedUsers).toBe(1);
  });

  it('retains no user when retention.count is 0', async () => {
    const hub = createMemoryHub({ now: clock().now, retention: { count: 0 } });
    await hub.push({ users: ['alice'] }, 'x', 1);
    await hub.push({ all: true }, 'x', 1);
    expect(hub.retainedUsers).toBe(0);
  });
});

describe('mergeReplay', () => {
  const entry = (seq: number): RetainedPush => ({ seq, message: { id: seq.toString(), event: 'x', json: 'null', pushedAt: 0 } });

  it('merges two ascending lists past the id, once each, cut to the newest limit', () => {
    const own = [entry(1), entry(4), entry(6)];
    const broadcast = [entry(2), entry(4), entry(5), entry(7)];
    expect(mergeReplay(own, broadcast, 1, 100).map((message) => message.id)).toEqual(['2', '4', '5', '6', '7']);
    expect(mergeReplay(own, broadcast, 0, 2).map((message) => message.id)).toEqual(['6', '7']);
    expect(mergeReplay([], [], 0, 10)).toEqual([]);
  });
});
