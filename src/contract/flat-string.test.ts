import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { flat } from './flat-string.js';

describe('flat', () => {
  it('gives back the same text, for built strings and for plain ones', () => {
    const id = randomUUID();
    expect(flat(id)).toBe(id);
    const built = `data: ${JSON.stringify({ id })}` + ',"choices":[';
    expect(flat(built)).toBe(`data: {"id":"${id}"},"choices":[`);
    expect(flat('')).toBe('');
    expect(flat('é😀')).toBe('é😀');
  });
});
