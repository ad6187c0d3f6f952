// What every HealthStore must do, run against the memory store here; the Redis store runs the
// same cases (see its own test file).
import { describe, expect, it } from 'vitest';
import { cooldownMs, type CooldownPolicy, type HealthStore } from './health.js';
import { createMemoryHealthStore } from './memory-health-store.js';

export const contractPolicy: CooldownPolicy = { initialMs: 1000, maxMs: 8000, probeTimeoutMs: 500 };

export function describeHealthStore(name: string, make: () => Promise<HealthStore>): void {
  describe(`${name}: target health`, () => {
    it('an unknown target is healthy, with nothing in flight', async () => {
      const store = await make();
      expect((await store.read(['a/m'], 0)).get('a/m')).toEqual({ state: 'healthy', consecutiveFailures: 0, inFlight: 0 });
    });

    it('a failure cools the target down for the exponential cooldown, then it is half-open with one probe', async () => {
      const store = await make();
      const after = await store.recordFailure('a/m', { code: 'upstream_error' }, 10_000);
      expect(after).toMatchObject({ state: 'cooling', coolingUntil: 11_000, consecutiveFailures: 1, lastErrorCode: 'upstream_error' });
      expect(await store.claimProbe('a/m', 10_500)).toBe(false);
      expect((await store.read(['a/m'], 11_000)).get('a/m')?.state).toBe('half-open');
      expect(await store.claimProbe('a/m', 11_000)).toBe(true);
      expect(await store.claimProbe('a/m', 11_100)).toBe(false);
      // The probe failed: twice as long this time.
      expect(await store.recordFailure('a/m', { code: 'upstream_unavailable' }, 11_200)).toMatchObject({ state: 'cooling', coolingUntil: 13_200, consecutiveFailures: 2 });
    });

    it('a probe that never reports frees the slot after probeTimeoutMs', async () => {
      const store = await make();
      await store.recordFailure('a/m', { code: 'upstream_error' }, 0);
      expect(await store.claimProbe('a/m', 1000)).toBe(true);
      expect(await store.claimProbe('a/m', 1400)).toBe(false);
      expect(await store.claimProbe('a/m', 1500)).toBe(true);
    });

    it('a success makes it healthy again and resets the exponent', async () => {
      const store = await make();
      await store.recordFailure('a/m', { code: 'upstream_error' }, 0);
      await store.recordFailure('a/m', { code: 'upstream_error' }, 1000);
      await store.recordSuccess('a/m', 5000);
      expect((await store.read(['a/m'], 5000)).get('a/m')).toMatchObject({ state: 'healthy', consecutiveFailures: 0 });
      expect(await store.recordFailure('a/m', { code: 'upstream_error' }, 6000)).toMatchObject({ coolingUntil: 7000 });
    });

    it("Retry-After wins over the exponent, capped at maxMs", async () => {
      const store = await make();
      expect(await store.recordFailure('k#1', { code: 'upstream_rate_limited', retryAfterMs: 3000 }, 0)).toMatchObject({ coolingUntil: 3000 });
      expect(await store.recordFailure('k#2', { code: 'upstream_rate_limited', retryAfterMs: 60_000 }, 0)).toMatchObject({ coolingUntil: 8000 });
    });

    it('a disabled key stays out until reset, and a success does not bring it back', async () => {
      const store = await make();
      await store.recordFailure('k#1', { code: 'upstream_auth_failed', disable: true }, 0);
      await store.recordSuccess('k#1', 1);
      expect((await store.read(['k#1'], 1_000_000)).get('k#1')?.state).toBe('disabled');
      expect(await store.claimProbe('k#1', 1_000_000)).toBe(false);
      await store.reset('k#1');
      expect((await store.read(['k#1'], 1_000_000)).get('k#1')?.state).toBe('healthy');
    });

    it('counts requests in flight; releasing twice counts once', async () => {
      const store = await make();
      const first = await store.acquire('a/m', 0);
      const second = await store.acquire('a/m', 0);
      expect((await store.read(['a/m', 'b/m'], 0)).get('a/m')?.inFlight).toBe(2);
      first();
      first();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await store.read(['a/m'], 0)).get('a/m')?.inFlight).toBe(1);
      second();
    });

    it('reads and acquires in one step: the read as read answers it, without this count', async () => {
      const store = await make();
      await store.recordFailure('k#1', { code: 'upstream_auth_failed', disable: true }, 0);
      const other = await store.acquire('a/m', 0);
      const { health, release } = await store.readAndAcquire(['a/m', 'k#1'], 'a/m', 0);
      expect(health.get('a/m')).toEqual({ state: 'healthy', consecutiveFailures: 0, inFlight: 1 });
      expect(health.get('k#1')?.state).toBe('disabled');
      expect((await store.read(['a/m'], 0)).get('a/m')?.inFlight).toBe(2);
      release();
      release();
      other();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await store.read(['a/m'], 0)).get('a/m')?.inFlight).toBe(0);
    });
  });
}

describe('cooldownMs', () => {
  it('doubles from initialMs and stops at maxMs', () => {
    expect([1, 2, 3, 4, 5, 50].map((failures) => cooldownMs(failures, contractPolicy))).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
  });
});

describeHealthStore('memory', () => Promise.resolve(createMemoryHealthStore(contractPolicy)));
