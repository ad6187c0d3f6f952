// The limiter as routes see it, on a fake clock and a fake usage store: each limit refuses with
// its name and an exact Retry-After, then lets the caller through when time, a freed slot or a new
// UTC day or month says so; a refusal takes nothing; quotas survive a restart; settle counts once.
import { describe, expect, it } from 'vitest';
import type { Limits } from '../contract/principal.js';
import { SluiceError } from '../errors/sluice-error.js';
import { createLimiter, type QuotaSubject } from './create-limiter.js';
import type { Admission, LimitSubject, Limiter } from './limiter.js';
import { createMemoryLimitState, type MemoryLimitState } from './memory-limit-state.js';

const noon = Date.UTC(2026, 11, 1, 12); // 2026-12-01T12:00:00Z

interface UsageRow {
  readonly at: number;
  readonly userId: string;
  readonly keyId?: string;
  readonly totalTokens: number;
}

/** What a UsageStore answers from its rows, counting how often it is asked. */
function fakeUsageStore(rows: UsageRow[] = []) {
  const calls: { subject: QuotaSubject; since: number }[] = [];
  return {
    rows,
    calls,
    tokensSince: async (subject: QuotaSubject, since: number): Promise<number> => {
      calls.push({ subject, since });
      const mine = rows.filter((row) => ('keyId' in subject ? row.keyId === subject.keyId : row.userId === subject.userId));
      return mine.filter((row) => row.at >= since).reduce((sum, row) => sum + row.totalTokens, 0);
    },
  };
}

function setup(options: { at?: number; rows?: UsageRow[]; state?: MemoryLimitState } = {}) {
  let time = options.at ?? noon;
  const usage = fakeUsageStore(options.rows);
  const state = options.state ?? createMemoryLimitState();
  const limiter = createLimiter({ state, now: () => time, seedQuota: usage.tokensSince });
  return {
    limiter,
    usage,
    state,
    advance: (ms: number) => {
      time += ms;
    },
    setTime: (at: number) => {
      time = at;
    },
  };
}

function subject(options: { userId?: string; keyId?: string; user?: Limits; key?: Limits }): LimitSubject {
  return {
    userId: options.userId ?? 'ada',
    userLimits: options.user ?? {},
    ...(options.keyId === undefined ? {} : { keyId: options.keyId }),
    keyLimits: options.key ?? {},
  };
}

async function refusal(limiter: Limiter, who: LimitSubject): Promise<SluiceError> {
  const error: unknown = await limiter.admit(who).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof SluiceError)) throw new Error(`expected a SluiceError refusal, got ${String(error)}`);
  return error;
}

async function admitTimes(limiter: Limiter, who: LimitSubject, times: number): Promise<Admission[]> {
  const admissions: Admission[] = [];
  for (let index = 0; index < times; index += 1) admissions.push(await limiter.admit(who));
  return admissions;
}

describe('each limit is reached and then recovers', () => {
  it('requests per minute: refused once the bucket is empty, admitted when one request is back', async () => {
    const { limiter, advance } = setup();
    const who = subject({ keyId: 'k1', key: { requestsPerMinute: 2 } });
    await admitTimes(limiter, who, 2);
    const error = await refusal(limiter, who);
    expect(error.code).toBe('rate_limited');
    expect(error.status).toBe(429);
    expect(error.message).toBe('Rate limit reached: key.requestsPerMinute is 2 per minute; retry in 30 s.');
    expect(error.retryAfterSeconds).toBe(30);
    advance(29_999);
    expect((await refusal(limiter, who)).retryAfterSeconds).toBe(1);
    advance(1);
    await limiter.admit(who);
  });

  it('tokens per minute: admitted while the balance is above 0, refused in debt until it is paid back', async () => {
    const { limiter, advance } = setup();
    const who = subject({ user: { tokensPerMinute: 1000 } });
    // The balance is 1000: a request that will use 1500 is still admitted (tokens are charged after).
    await (await limiter.admit(who)).settle(1500);
    const error = await refusal(limiter, who);
    expect(error.code).toBe('rate_limited');
    // -500 at 1000 per 60 000 ms: 0 after 30 000 ms, above 0 from 30 001 ms.
    expect(error.message).toBe('Rate limit reached: user.tokensPerMinute is 1000 per minute; retry in 31 s.');
    expect(error.retryAfterSeconds).toBe(31);
    advance(30_000);
    expect((await refusal(limiter, who)).retryAfterSeconds).toBe(1);
    advance(1);
    await limiter.admit(who);
  });

  it('concurrent streams: refused while the slots are held, admitted once one is released', async () => {
    const { limiter } = setup();
    const who = subject({ keyId: 'k1', key: { concurrentStreams: 2 } });
    const [first] = await admitTimes(limiter, who, 2);
    const error = await refusal(limiter, who);
    expect(error.code).toBe('rate_limited');
    expect(error.message).toBe('Rate limit reached: key.concurrentStreams is 2 at once; retry in 1 s.');
    expect(error.retryAfterSeconds).toBe(1);
    await first?.settle(10);
    await limiter.admit(who);
    await refusal(limiter, who);
  });

  it('daily tokens: refused once used up, admitted when the next UTC day begins', async () => {
    const { limiter, setTime } = setup();
    const who = subject({ user: { dailyTokens: 1000 } });
    await (await limiter.admit(who)).settle(999);
    await (await limiter.admit(who)).settle(1);
    const error = await refusal(limiter, who);
    expect(error.code).toBe('quota_exceeded');
    expect(error.retryable).toBe(false);
    expect(error.message).toBe('Token quota used up: user.dailyTokens is 1000 tokens per UTC day; it resets at 2026-12-02T00:00:00.000Z, in 43200 s.');
    expect(error.retryAfterSeconds).toBe(43_200);
    setTime(Date.UTC(2026, 11, 2) - 1);
    expect((await refusal(limiter, who)).retryAfterSeconds).toBe(1);
    setTime(Date.UTC(2026, 11, 2));
    await limiter.admit(who);
  });

  it('monthly tokens: a new day does not reset them, the next UTC month does', async () => {
    const { limiter, setTime } = setup({ at: Date.UTC(2026, 11, 15, 6) });
    const who = subject({ keyId: 'k1', key: { monthlyTokens: 5000, dailyTokens: 100_000 } });
    await (await limiter.admit(who)).settle(5000);
    const error = await refusal(limiter, who);
    expect(error.code).toBe('quota_exceeded');
    expect(error.message).toBe('Token quota used up: key.monthlyTokens is 5000 tokens per UTC month; it resets at 2027-01-01T00:00:00.000Z, in 1447200 s.');
    setTime(Date.UTC(2026, 11, 16));
    expect((await refusal(limiter, who)).retryAfterSeconds).toBe(16 * 86_400);
    setTime(Date.UTC(2027, 0, 1));
    await limiter.admit(who);
  });
});

describe('key and user limits apply independently', () => {
  it("a key's limit refuses that key, not the same user's other keys", async () => {
    const { limiter } = setup();
    const viaFirst = subject({ keyId: 'first', key: { requestsPerMinute: 1 } });
    const viaSecond = subject({ keyId: 'second', key: { requestsPerMinute: 1 } });
    await limiter.admit(viaFirst);
    expect((await refusal(limiter, viaFirst)).message).toContain('key.requestsPerMinute');
    await limiter.admit(viaSecond);
  });

  it("a user's limit refuses that user through any key, not other users of the same key", async () => {
    const { limiter } = setup();
    const userLimits: Limits = { requestsPerMinute: 1 };
    await limiter.admit(subject({ userId: 'ada', keyId: 'first', user: userLimits }));
    const error = await refusal(limiter, subject({ userId: 'ada', keyId: 'second', user: userLimits }));
    expect(error.message).toContain('user.requestsPerMinute');
    await limiter.admit(subject({ userId: 'grace', keyId: 'first', user: userLimits }));
  });

  it("a key's quota counts every user it served; a user's quota every key they used", async () => {
    const { limiter } = setup();
    const service = (userId: string) => subject({ userId, keyId: 'service', key: { dailyTokens: 100 } });
    await (await limiter.admit(service('ada'))).settle(60);
    await (await limiter.admit(service('grace'))).settle(40);
    expect((await refusal(limiter, service('linus'))).message).toContain('key.dailyTokens');

    const ada = (keyId: string) => subject({ userId: 'ada', keyId, user: { dailyTokens: 100 } });
    await (await limiter.admit(ada('one'))).settle(100);
    expect((await refusal(limiter, ada('two'))).message).toContain('user.dailyTokens');
  });
});

describe('a refusal takes nothing', () => {
  it("a request refused by the user's requests per minute does not use the key's", async () => {
    const { limiter } = setup();
    const key: Limits = { requestsPerMinute: 3 };
    const ada = subject({ userId: 'ada', keyId: 'shared', key, user: { requestsPerMinute: 1 } });
    await limiter.admit(ada);
    for (let attempt = 0; attempt < 10; attempt += 1) expect((await refusal(limiter, ada)).message).toContain('user.requestsPerMinute');
    const grace = subject({ userId: 'grace', keyId: 'shared', key });
    await admitTimes(limiter, grace, 2);
    expect((await refusal(limiter, grace)).message).toContain('key.requestsPerMinute');
  });

  it('a refused request holds no concurrent-stream slot', async () => {
    const { limiter } = setup();
    const key: Limits = { concurrentStreams: 1 };
    const ada = subject({ userId: 'ada', keyId: 'shared', key, user: { dailyTokens: 10 } });
    await (await limiter.admit(ada)).settle(10);
    await refusal(limiter, ada);
    await limiter.admit(subject({ userId: 'grace', keyId: 'shared', key }));
  });
});

describe('Retry-After is exact', () => {
  it('rounds the wait up to whole seconds and is never 0', async () => {
    const { limiter, advance } = setup();
    // 7 per minute: one request back every 8571.43 ms.
    const who = subject({ user: { requestsPerMinute: 7 } });
    await admitTimes(limiter, who, 7);
    expect((await refusal(limiter, who)).retryAfterSeconds).toBe(9);
    advance(8571);
    expect((await refusal(limiter, who)).retryAfterSeconds).toBe(1);
    advance(1);
    await limiter.admit(who);
  });

  it('a big answer leaves the bucket in debt: refused until refill pays it back, to the millisecond', async () => {
    const { limiter, advance } = setup();
    const who = subject({ keyId: 'k1', key: { tokensPerMinute: 1000 } });
    await (await limiter.admit(who)).settle(10_000);
    // -9000 at 1/60 token per ms: 540 000 ms to 0, above 0 at 540 001 ms.
    expect((await refusal(limiter, who)).retryAfterSeconds).toBe(541);
    advance(540_000);
    await refusal(limiter, who);
    advance(1);
    await limiter.admit(who);
  });

  it('when several limits refuse, names the one that lasts longest', async () => {
    const { limiter } = setup();
    const who = subject({ keyId: 'k1', key: { requestsPerMinute: 1 }, user: { dailyTokens: 5 } });
    await (await limiter.admit(who)).settle(5);
    const error = await refusal(limiter, who);
    expect(error.code).toBe('quota_exceeded');
    expect(error.retryAfterSeconds).toBe(43_200);
  });
});

describe('quotas are seeded from the usage store', () => {
  it('counts only this UTC day and month, and asks the store once per counter and period', async () => {
    const rows: UsageRow[] = [
      { at: Date.UTC(2026, 10, 30, 12), userId: 'ada', totalTokens: 5000 }, // last month
      { at: Date.UTC(2026, 11, 3), userId: 'ada', totalTokens: 800 }, // this month, not today
      { at: Date.UTC(2026, 11, 10, 1), userId: 'ada', totalTokens: 900 }, // today
      { at: Date.UTC(2026, 11, 10, 1), userId: 'grace', totalTokens: 100_000 }, // someone else
    ];
    const { limiter, usage, setTime } = setup({ rows, at: Date.UTC(2026, 11, 10, 12) });
    const who = subject({ user: { dailyTokens: 1000, monthlyTokens: 2000 } });
    // Two first requests at once share one query per counter.
    const [first, second] = await Promise.all([limiter.admit(who), limiter.admit(who)]);
    expect(usage.calls).toEqual([
      { subject: { userId: 'ada' }, since: Date.UTC(2026, 11, 10) },
      { subject: { userId: 'ada' }, since: Date.UTC(2026, 11, 1) },
    ]);
    // Day seeded with 900: 100 more uses it up.
    await first.settle(60);
    await second.settle(40);
    expect((await refusal(limiter, who)).message).toContain('user.dailyTokens');
    // Month seeded with 1700, plus the 100 above: 200 more uses it up; the new day asks once more.
    setTime(Date.UTC(2026, 11, 11, 12));
    await (await limiter.admit(who)).settle(200);
    expect((await refusal(limiter, who)).message).toContain('user.monthlyTokens');
    expect(usage.calls).toHaveLength(3);
    expect(usage.calls[2]).toEqual({ subject: { userId: 'ada' }, since: Date.UTC(2026, 11, 11) });
  });

  it('seeds a key quota from the key\'s rows and the month from the month\'s start', async () => {
    const rows: UsageRow[] = [
      { at: Date.UTC(2026, 11, 3), userId: 'ada', keyId: 'k1', totalTokens: 700 },
      { at: Date.UTC(2026, 11, 3), userId: 'grace', keyId: 'k1', totalTokens: 300 },
      { at: Date.UTC(2026, 11, 3), userId: 'ada', keyId: 'k2', totalTokens: 5000 },
    ];
    const { limiter, usage } = setup({ rows, at: Date.UTC(2026, 11, 10) });
    const who = subject({ userId: 'ada', keyId: 'k1', key: { monthlyTokens: 1000 } });
    const error = await refusal(limiter, who);
    expect(error.message).toContain('key.monthlyTokens');
    expect(usage.calls).toEqual([{ subject: { keyId: 'k1' }, since: Date.UTC(2026, 11, 1) }]);
  });

  it('a restart does not reset a used-up quota: a new limiter on a new state is still refused', async () => {
    const rows: UsageRow[] = [];
    const before = setup({ rows });
    const who = subject({ userId: 'ada', keyId: 'k1', user: { dailyTokens: 1000 } });
    const admission = await before.limiter.admit(who);
    await admission.settle(1200);
    rows.push({ at: noon + 5000, userId: 'ada', keyId: 'k1', totalTokens: 1200 });
    expect((await refusal(before.limiter, who)).code).toBe('quota_exceeded');

    const after = setup({ rows, at: noon + 60_000 });
    const error = await refusal(after.limiter, who);
    expect(error.code).toBe('quota_exceeded');
    expect(error.message).toContain('user.dailyTokens');
  });

  it('a failing usage store fails the admission instead of waiving the quota', async () => {
    const state = createMemoryLimitState();
    const limiter = createLimiter({
      state,
      now: () => noon,
      seedQuota: async () => {
        throw new SluiceError('store_unavailable');
      },
    });
    const error = await limiter.admit(subject({ user: { dailyTokens: 10, requestsPerMinute: 1 } })).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as SluiceError).code).toBe('store_unavailable');
    // Nothing was taken: the one request per minute is still there once the store answers.
    const recovered = createLimiter({ state, now: () => noon, seedQuota: async () => 0 });
    await recovered.admit(subject({ user: { dailyTokens: 10, requestsPerMinute: 1 } }));
  });
});

describe('settle', () => {
  it('counts only the first call: tokens once, the slot once', async () => {
    const { limiter } = setup();
    const who = subject({ keyId: 'k1', key: { concurrentStreams: 2, dailyTokens: 1000 } });
    const first = await limiter.admit(who);
    await limiter.admit(who);
    await Promise.all([first.settle(600), first.settle(600)]);
    await first.settle(600);
    // One slot was freed, not three.
    const third = await limiter.admit(who);
    expect((await refusal(limiter, who)).message).toContain('key.concurrentStreams');
    // 600 counted once: 399 more fits the day, and the request after that is refused.
    await third.settle(399);
    const fourth = await limiter.admit(subject({ keyId: 'k1', key: { dailyTokens: 1000 } }));
    await fourth.settle(1);
    expect((await refusal(limiter, subject({ keyId: 'k1', key: { dailyTokens: 1000 } }))).code).toBe('quota_exceeded');
  });

  it('charges the day the generation ended in when it ran past midnight', async () => {
    const { limiter, setTime } = setup({ at: Date.UTC(2026, 11, 1, 23, 59) });
    const who = subject({ user: { dailyTokens: 100 } });
    const admission = await limiter.admit(who);
    setTime(Date.UTC(2026, 11, 2, 0, 1));
    await admission.settle(100);
    expect((await refusal(limiter, who)).retryAfterSeconds).toBe(86_400 - 60);
  });

  it('with no limits at all, admits everything and touches no counter', async () => {
    const { limiter, state, usage } = setup();
    const admissions = await admitTimes(limiter, subject({ keyId: 'k1' }), 100);
    for (const admission of admissions) await admission.settle(1_000_000);
    expect(state.size()).toEqual({ buckets: 0, concurrency: 0, quotas: 0 });
    expect(usage.calls).toEqual([]);
  });
});
