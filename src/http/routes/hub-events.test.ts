// How long a hub connection may live: brought forward at random by up to a tenth of the maximum
// age, so that connections opened together do not reconnect together, and in whole seconds when
// that tenth is 10 s or more, so that thousands of connections share a few hundred timer lists.
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../test/support/seeded-random.js';
import { connectionAgeMs } from './hub-events.js';

describe('connectionAgeMs', () => {
  it('spreads an hour\'s maximum age over its last six minutes, in whole seconds', () => {
    const random = seededRandom(7);
    const ages = Array.from({ length: 5000 }, () => connectionAgeMs(3_600_000, random));
    for (const age of ages) {
      expect(age % 1000).toBe(0);
      expect(age).toBeGreaterThan(3_240_000);
      expect(age).toBeLessThanOrEqual(3_600_000);
    }
    // Spread, yet few distinct durations: one timer list each.
    const distinct = new Set(ages).size;
    expect(distinct).toBeGreaterThan(300);
    expect(distinct).toBeLessThanOrEqual(360);
  });

  it('keeps milliseconds for a short maximum age, where whole seconds would leave no spread', () => {
    expect(connectionAgeMs(300, () => 0.5)).toBe(285);
    expect(connectionAgeMs(300, () => 0)).toBe(300);
    expect(connectionAgeMs(60_000, () => 0.999)).toBe(54_006);
  });
});
