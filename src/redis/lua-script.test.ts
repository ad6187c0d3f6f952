// Scripts run by digest: a script Redis does not hold yet is sent whole once (EVAL) and by digest
// (EVALSHA) from then on, with the same reply; a failing script's own error is not retried. On a
// Redis Cluster a script's keys must share one slot: keys made by slotKey with one tag do, and the
// cluster refuses (CROSSSLOT) a script given two slots' keys, or one reaching a key it did not declare.
// A connection loads the defined scripts as it becomes ready, so a script call nobody waits for is
// never answered NOSCRIPT and overtaken by a command sent after it, even on a Redis (or a cluster
// master) that never saw the script, or that restarted. On a cluster that holds as well for a master's
// connection that dropped: ioredis does not reconnect it but opens a new one once a command for that
// master's slots comes back MOVED from another master, as after the master restarted.
import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../observability/logger.js';
import { recordCommands, redisBackends, redisUrl, startRedisProxy, uniqueKeyPrefix } from '../../test/support/redis.js';
import { waitFor, within } from '../../test/support/wait.js';
import { createRedisConnections } from './connection.js';
import { hashTagOf, slotKey } from './keys.js';
import { defineLuaScript, runLuaScript } from './lua-script.js';
import { hashSlot } from './sharded-subscriber.js';

const backends = await redisBackends();
const logger = createLogger('silent');

describe('defineLuaScript', () => {
  it('names a script by the SHA-1 of its source, as Redis does', () => {
    // SCRIPT LOAD "return 1" answers this digest.
    expect(defineLuaScript('return 1').sha).toBe('e0e1f9fabfc9d4800c877a703b823ac0578ff8db');
  });
});

describe('slotKey', () => {
  it('puts the prefix first and the tag in braces, which is all Redis Cluster hashes', () => {
    expect(slotKey('sluice:', 'hub', ':seq')).toBe('sluice:{hub}:seq');
    expect(hashTagOf(slotKey('sluice:', 'hub', ':user:a}b{c'))).toBe('hub');
    expect(hashTagOf('sluice:plain')).toBe('sluice:plain');
    expect(hashTagOf('sluice:{}x')).toBe('sluice:{}x');
  });

  it('is hashed as Redis Cluster does (CLUSTER KEYSLOT): by the tag alone', () => {
    expect([hashSlot('a'), hashSlot('b'), hashSlot('foo'), hashSlot('123456789')]).toEqual([15495, 3300, 12182, 0x31c3 % 16384]);
    expect(hashSlot(slotKey('sluice:', 'hub', ':seq'))).toBe(hashSlot('hub'));
  });
});

for (const backend of backends) {
  describe.skipIf(!backend.available)(`runLuaScript (${backend.name})`, () => {
    it('sends a script Redis has never seen once whole, then by digest, with the same reply', async () => {
      const redis = createRedisConnections({ ...backend.target, keyPrefix: uniqueKeyPrefix(), logger });
      await redis.ready();
      const sent = recordCommands(redis.command);
      // A source of this test's own, so no earlier run (or other test) has cached it.
      const script = defineLuaScript(`-- ${randomBytes(8).toString('hex')}\nreturn {KEYS[1], ARGV[1], ARGV[2]}`);
      const key = `${redis.keyPrefix}lua`;
      expect(await runLuaScript(redis.command, script, [key], ['a', 'b'])).toEqual([key, 'a', 'b']);
      expect(await runLuaScript(redis.command, script, [key], ['c', 'd'])).toEqual([key, 'c', 'd']);
      expect(sent).toEqual(['evalsha', 'eval', 'evalsha']);
      await redis.close();
    });

    it('rejects with the script\'s own error, sent once', async () => {
      const redis = createRedisConnections({ ...backend.target, keyPrefix: uniqueKeyPrefix(), logger });
      await redis.ready();
      const script = defineLuaScript(`-- ${randomBytes(8).toString('hex')}\nreturn redis.error_reply('NOPE broken on purpose')`);
      await expect(runLuaScript(redis.command, script, [], [])).rejects.toThrow(/NOPE broken on purpose/);
      await expect(runLuaScript(redis.command, script, [], [])).rejects.toThrow(/NOPE broken on purpose/);
      await redis.close();
    });

    it('runs a script over keys of one tag, however many', async () => {
      const redis = createRedisConnections({ ...backend.target, keyPrefix: uniqueKeyPrefix(), logger });
      await redis.ready();
      const script = defineLuaScript(`for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[1], 'PX', 5000) end\nreturn #KEYS`);
      const keys = Array.from({ length: 20 }, (_, index) => slotKey(redis.keyPrefix, 'one-slot', `:${index.toString()}`));
      expect(await runLuaScript(redis.command, script, keys, ['x'])).toBe(20);
      await redis.close();
    });
  });
}

/** A script of this test's own, which no Redis holds yet: it sets KEYS[1] to ARGV[1]. */
function unseenSetScript(): ReturnType<typeof defineLuaScript> {
  return defineLuaScript(`-- ${randomBytes(8).toString('hex')}\nreturn redis.call('SET', KEYS[1], ARGV[1], 'PX', 5000)`);
}

for (const backend of backends) {
  describe.skipIf(!backend.available)(`a script call nobody waits for (${backend.name})`, () => {
    it('is not overtaken by a command sent after it, though Redis never saw the script before the connection opened', async () => {
      // Defined before the connections, as the stores' scripts are at module load.
      const script = unseenSetScript();
      const redis = createRedisConnections({ ...backend.target, keyPrefix: uniqueKeyPrefix(), logger });
      await redis.ready();
      const key = `${redis.keyPrefix}unawaited`;
      const sent = recordCommands(redis.command);
      const set = runLuaScript(redis.command, script, [key], ['set']);
      // Without the load at ready: EVALSHA answered NOSCRIPT, this GET answered null, then EVAL.
      expect(await redis.command.get(key)).toBe('set');
      await set;
      expect(sent).toEqual(['evalsha', 'get']);
      await redis.close();
    });
  });
}

describe.skipIf(!backends.find((backend) => backend.name === 'redis')?.available)('a script call nobody waits for, after the connection came back (redis)', () => {
  it('finds a script defined while it was connected: the connection loads the scripts again as it is ready again', async () => {
    const proxy = await startRedisProxy(redisUrl);
    const redis = createRedisConnections({ url: proxy.url, keyPrefix: uniqueKeyPrefix(), logger });
    try {
      await redis.ready();
      // Not loaded at the first ready, as a script Redis forgot when it restarted.
      const script = unseenSetScript();
      proxy.cut();
      await waitFor(() => !redis.healthy, 'the connection to notice the cut');
      proxy.restore();
      await redis.ready();
      const key = `${redis.keyPrefix}unawaited`;
      const set = runLuaScript(redis.command, script, [key], ['set']);
      expect(await redis.command.get(key)).toBe('set');
      await set;
    } finally {
      await redis.close();
      await proxy.close();
    }
  });
});

const cluster = backends.find((backend) => backend.name === 'redis-cluster');
describe.skipIf(!cluster?.available)('a script that touches two slots, on a Redis Cluster', () => {
  it('is refused with CROSSSLOT when its keys are in two slots, and when it reaches a key it did not declare', async () => {
    if (!cluster) return;
    const redis = createRedisConnections({ ...cluster.target, keyPrefix: uniqueKeyPrefix(), logger });
    await redis.ready();
    const script = defineLuaScript(`for i = 1, #KEYS do redis.call('SET', KEYS[i], '1', 'PX', 5000) end\nreturn #KEYS`);
    // {a} and {b} hash to different slots (15495 and 3300).
    await expect(runLuaScript(redis.command, script, [slotKey(redis.keyPrefix, 'a'), slotKey(redis.keyPrefix, 'b')], [])).rejects.toThrow(/CROSSSLOT/);
    const reaching = defineLuaScript(`redis.call('SET', KEYS[1], '1', 'PX', 5000)\nreturn redis.call('SET', ARGV[1], '1', 'PX', 5000)`);
    await expect(runLuaScript(redis.command, reaching, [slotKey(redis.keyPrefix, 'a')], [slotKey(redis.keyPrefix, 'b')])).rejects.toThrow(/slot|non local/i);
    await redis.close();
  });
});

describe.skipIf(!cluster?.available)('a script call nobody waits for, after a master\'s connection came back (redis-cluster)', () => {
  it('finds a script defined while it was connected: the master\'s new connection loads the scripts before anything else', async () => {
    if (!cluster) return;
    const redis = createRedisConnections({ ...cluster.target, keyPrefix: uniqueKeyPrefix(), logger });
    const client = redis.command;
    if (!(client instanceof Cluster)) throw new Error('a Redis Cluster target gives a Cluster client');
    const key = `${redis.keyPrefix}unawaited`;
    let admin: Redis | undefined;
    try {
      await redis.ready();
      // Not loaded at the first ready, as a script a restarted master forgot. (No SCRIPT FLUSH:
      // other test files use the same cluster at the same time, and would lose their scripts.)
      const script = unseenSetScript();
      const owner = client.slots[hashSlot(key)]?.[0];
      const dropped = client.nodes('master').find((node) => `${node.options.host ?? ''}:${String(node.options.port)}` === owner);
      if (owner === undefined || dropped === undefined) throw new Error(`no connection to the master of ${key}'s slot (${owner ?? 'unknown'})`);
      // Only this client's connection to that master is killed, so no other test loses its own.
      const id = await dropped.client('ID');
      admin = new Redis(`redis://${owner}`);
      await admin.client('KILL', 'ID', id);
      // ioredis never reconnects a cluster node's connection: it ends and leaves the pool.
      await waitFor(() => !client.nodes('master').includes(dropped), 'ioredis to drop the killed master connection');
      const recreated = new Promise<Redis>((resolve) => client.once('+node', resolve));
      // The next command for the slot goes to another master, is answered MOVED, and ioredis opens
      // the connection anew. Awaited, so the script call below goes straight to the new connection:
      // two commands sent at once would each be bounced by a master picked at random, and could
      // come back in either order, whatever the scripts.
      expect(await client.exists(key)).toBe(0);
      expect(await within(recreated, 2000, 'ioredis to open a new connection to the master')).not.toBe(dropped);
      const sent = recordCommands(client);
      const set = runLuaScript(client, script, [key], ['set']);
      // Without the load on '+node': EVALSHA answered NOSCRIPT, this GET answered null, then EVAL.
      expect(await client.get(key)).toBe('set');
      await set;
      expect(sent).toEqual(['evalsha', 'get']);
    } finally {
      await client.del(key).catch(() => undefined);
      await admin?.quit();
      await redis.close();
    }
  });
});
