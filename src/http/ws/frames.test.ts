// The push frame is encoded once per message: every socket is sent the same bytes, which are the
// UTF-8 of the frame's JSON text (docs/decisions/0028-websocket-push-bytes.md).
import { describe, expect, it } from 'vitest';
import type { PushMessage } from '../../hub/hub.js';
import { pushFrame } from './frames.js';

describe('pushFrame', () => {
  it('returns one Buffer per message, the UTF-8 of the frame with the data embedded as it is', () => {
    const data = { text: '\u0301 你好 🙂 e\u0301' };
    const message: PushMessage = { id: '42', event: 'notice', json: JSON.stringify(data), pushedAt: 0 };
    const bytes = pushFrame(message);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect(bytes.toString('utf8')).toBe(JSON.stringify({ type: 'push', eventId: '42', event: 'notice', data }));
    expect(pushFrame(message)).toBe(bytes);
  });

  it('builds a new Buffer for the next message', () => {
    const first: PushMessage = { id: '1', event: 'a', json: '1', pushedAt: 0 };
    const second: PushMessage = { id: '2', event: 'b', json: '"two"', pushedAt: 0 };
    const firstBytes = pushFrame(first);
    expect(pushFrame(second).toString('utf8')).toBe('{"type":"push","eventId":"2","event":"b","data":"two"}');
    expect(firstBytes.toString('utf8')).toBe('{"type":"push","eventId":"1","event":"a","data":1}');
  });
});
