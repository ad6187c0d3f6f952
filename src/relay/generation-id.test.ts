import { describe, expect, it } from 'vitest';
import { createGenerationIdFactory } from './generation-id.js';

describe('generation ids', () => {
  it('are 16 URL- and header-safe characters and do not repeat across pool refills', () => {
    const next = createGenerationIdFactory();
    const ids = new Set<string>();
    for (let index = 0; index < 2000; index++) {
      const id = next();
      expect(id).toMatch(/^[A-Za-z0-9_-]{16}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(2000);
  });
});
