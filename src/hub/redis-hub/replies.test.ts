// Counting replies without Redis: a request waits for exactly as many distinct nodes as PUBLISH
// reached, never longer than the deadline (a silent node counts 0), and ignores repeats and late
// replies; a failure to send is store_unavailable.
import type { RedisConnections } from '../../redis/connection.js';
import { describe, expect, it } from 'vitest';
import { SluiceError } from '../../errors/sluice-error.js';
import { createLogger } from '../../observability/logger.js';
import { hubKeys } from './keys.js';
import { ReplyCounter } from './replies.js';

/** Replies to other nodes are not sent in these tests: only this node's own, which need no Redis. */
const noRedis = {} as Pick<RedisConnections, 'publish'>;

function counter(replyTimeoutMs = 1000): ReplyCounter {
  return new ReplyCounter({ redis: noRedis, keys: hubKeys('test:'), nodeId: 'self', replyTimeoutMs, logger: createLogger('silent') });
}

describe('ReplyCounter', () => {
  it('sums one reply per node, and settles as soon as every receiver replied', async () => {
    const replies = counter(10_000);
    const startedAt = performance.now();
    const gathered = await replies.gather(async (request) => {
      replies.answer('self', request, 2);
      // A fast node replies before PUBLISH's own answer is back; a repeat of it is not counted.
      replies.receive({ request, node: 'other', count: 3 });
      replies.receive({ request, node: 'other', count: 3 });
      setTimeout(() => replies.receive({ request, node: 'third', count: 1 }), 20);
      return { result: 'sent', receivers: 3 };
    });
    expect(gathered).toEqual({ result: 'sent', total: 6 });
    expect(performance.now() - startedAt).toBeLessThan(1000);
  });

  it('counts a node that does not reply by the deadline as zero; its late reply is harmless', async () => {
    const replies = counter(50);
    let late: string | undefined;
    const startedAt = performance.now();
    const gathered = await replies.gather(async (request) => {
      late = request;
      replies.answer('self', request, 4);
      return { result: undefined, receivers: 2 };
    });
    expect(gathered.total).toBe(4);
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(45);
    expect(() => replies.receive({ request: late ?? '', node: 'slow', count: 9 })).not.toThrow();
  });

  it('settles every waiting request with what it has on finishAll (shutdown)', async () => {
    const replies = counter(10_000);
    const gathering = replies.gather(async () => ({ result: undefined, receivers: 5 }));
    await new Promise((resolve) => setImmediate(resolve));
    replies.finishAll();
    expect((await gathering).total).toBe(0);
  });

  it('turns a failed send into store_unavailable and passes a SluiceError through', async () => {
    const replies = counter();
    await expect(replies.gather(() => Promise.reject(new Error('connection is closed')))).rejects.toMatchObject({ code: 'store_unavailable' });
    const own = new SluiceError('invalid_request', { message: 'no' });
    await expect(replies.gather(() => Promise.reject(own))).rejects.toBe(own);
  });
});
