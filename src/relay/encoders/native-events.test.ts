// The native SSE encoder's text deltas, written from a head built once, are exactly what the
// general path (toNativeEvent, then formatSseEvent) makes of them.
import { describe, expect, it } from 'vitest';
import { formatSseEvent } from '../../sse/format.js';
import { createNativeSseEncoder, nativeEventId } from './native-events.js';

describe('createNativeSseEncoder', () => {
  it('writes a text delta exactly as formatSseEvent would, hostile text included', () => {
    const identity = { generationId: 'gen_AbC-12', model: 'm', userId: 'u' };
    const encode = createNativeSseEncoder(identity);
    const texts = ['', 'plain', 'line\nbreak', 'cr\rlf\r\n', 'quote " and \\ backslash', '\u0000\u001f', '你好🙂', '\u2028\u2029', 'data: [DONE]\n\n', '\ud800 lone'];
    texts.forEach((text, seq) => {
      expect(encode({ type: 'text-delta', text }, seq)).toBe(formatSseEvent({ event: 'delta', id: nativeEventId(identity.generationId, seq), data: JSON.stringify({ text }) }));
    });
  });

  it('refuses, as before, a generation id that cannot be an SSE id', () => {
    const encode = createNativeSseEncoder({ generationId: 'bad\nid', model: 'm', userId: 'u' });
    expect(() => encode({ type: 'text-delta', text: 'x' }, 0)).toThrow(TypeError);
  });
});
