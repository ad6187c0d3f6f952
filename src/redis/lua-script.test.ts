// Scripts run by digest: a script Redis does not hold yet is sent whole once (EVAL) and by digest
// (EVALSHA) from then on, with the same reply; a failing script's own error is not retried.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../observability/logger.js';
import { redisAvailable, redisUrl, uniqueKeyPrefix } from '../../test/support/redis.js';
import { createRedisConnections } from './connection.js';
import { defineLuaScript, runLuaScript } from './lua-script.js';

const available = await redisAvailable();
const logger = createLogger('silent');

describe('defineLuaScript', () => {
  it('names a script by the SHA-1 of its source, as Redis does', () => {
    // SCRIPT LOAD "return 1" answers this digest.
    expect(defineLuaScript('return 1').sha).toBe('e0e1f9fabfc9d4800c877a703b823ac0578ff8db');
  });
});

describe.skipIf(!available)('runLuaScript', () => {
  it('sends a script Redis has never seen once whole, then by digest, with the same reply', async () => {
    const redis = createRedisConnections({ url: redisUrl, keyPrefix: uniqueKeyPrefix(), logger });
    await redis.ready();
    const sent: string[] = [];
    const sendCommand = redis.command.sendCommand.bind(redis.command);
    redis.command.sendCommand = (command, ...rest) => {
      sent.push(command.name);
      return sendCommand(command, ...rest);
    };
    // A source of this test's own, so no earlier run (or other test) has cached it.
    const script = defineLuaScript(`-- ${randomBytes(8).toString('hex')}\nreturn {KEYS[1], ARGV[1], ARGV[2]}`);
    const key = `${redis.keyPrefix}lua`;
    expect(await runLuaScript(redis.command, script, [key], ['a', 'b'])).toEqual([key, 'a', 'b']);
    expect(await runLuaScript(redis.command, script, [key], ['c', 'd'])).toEqual([key, 'c', 'd']);
    expect(sent).toEqual(['evalsha', 'eval', 'evalsha']);
    await redis.close();
  });

  it('rejects with the script\'s own error, sent once', async () => {
    const redis = createRedisConnections({ url: redisUrl, keyPrefix: uniqueKeyPrefix(), logger });
    await redis.ready();
    const script = defineLuaScript(`-- ${randomBytes(8).toString('hex')}\nreturn redis.error_reply('NOPE broken on purpose')`);
    await expect(runLuaScript(redis.command, script, [], [])).rejects.toThrow(/NOPE broken on purpose/);
    await expect(runLuaScript(redis.command, script, [], [])).rejects.toThrow(/NOPE broken on purpose/);
    await redis.close();
  });
});
