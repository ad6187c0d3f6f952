// jsonString must be JSON.stringify for every string: a client parses what the encoders write, and
// a cluster node reads back what another wrote to Redis.
import { describe, expect, it } from 'vitest';
import { jsonString } from './json-string.js';

describe('jsonString', () => {
  it('is JSON.stringify for texts with and without something to escape', () => {
    const texts = ['', 'token12 ', 'plain text, with commas: and {braces} [1]', 'quote "', 'back \\ slash', 'line\nbreak\r\n', 'tab\t', '\u0000\u0001\u001f', '\u007f DEL stays', 'sep\u2028par\u2029', 'é 中文 ü', '😀 pair', 'lone \ud800 high', 'lone \udfff low', '\udc00\ud800 reversed', '</script>', "apostrophe '"];
    for (const text of texts) expect(jsonString(text)).toBe(JSON.stringify(text));
  });

  it('is JSON.stringify for 20 000 random strings of code units drawn from every class that matters', () => {
    // Quote, backslash, controls, DEL, ASCII, Latin-1, the BMP, both surrogate halves, U+2028/9.
    const pool = [0x22, 0x5c, 0x00, 0x08, 0x0a, 0x1f, 0x20, 0x7f, 0x41, 0x7a, 0xe9, 0x4e2d, 0xd83d, 0xde00, 0xd800, 0xdfff, 0x2028, 0xfffd];
    let seed = 7;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648);
    for (let index = 0; index < 20_000; index++) {
      const length = next() % 12;
      const units = Array.from({ length }, () => (next() % 3 === 0 ? (pool[next() % pool.length] ?? 0x41) : 0x61 + (next() % 26)));
      const text = String.fromCharCode(...units);
      expect(jsonString(text)).toBe(JSON.stringify(text));
    }
  });
});
