// Recorded company-endpoint streams decode through the configured text path and end marker.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../config/load.js';
import type { ResolvedSignedHttpProvider } from './config.js';
import type { SluiceError } from '../../errors/sluice-error.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { replayReads } from '../../../test/support/pushed-events.js';
import { signedEventsDecoder, valueAt } from './stream.js';

const provider = resolveConfig(
  { providers: { agent: { type: 'signed-http', url: 'https://agent.example/stream', auth: { scheme: 'none' }, textPath: 'data.content', endWhen: { path: 'code', equals: -200 } } } },
  {},
).providers['agent'] as ResolvedSignedHttpProvider;

async function* reads(name: string): AsyncGenerator<Uint8Array> {
  for (const line of readFileSync(new URL(`./__fixtures__/signed-http-${name}.chunks.txt`, import.meta.url), 'utf8').split('\n').filter(Boolean)) {
    await Promise.resolve();
    yield Buffer.from(JSON.parse(line) as string, 'latin1');
  }
}

async function replay(name: string, userId?: string): Promise<{ events: StreamEvent[]; error?: SluiceError }> {
  const { events, error } = await replayReads(signedEventsDecoder(provider, userId), reads(name));
  return error === undefined ? { events } : { events, error: error as SluiceError };
}

describe('recorded company-endpoint streams', () => {
  it('maps text through data.content and ends at code -200, characters whole across reads', async () => {
    const { events, error } = await replay('json');
    expect(error).toBeUndefined();
    expect(events.filter((event) => event.type !== 'upstream-event')).toEqual([{ type: 'text-delta', text: '智能' }, { type: 'text-delta', text: '体 🙂' }, { type: 'end', finishReason: 'stop' }]);
  });

  it('relays every JSON event as it came, with the user id added, before the text taken from it', async () => {
    const { events } = await replay('json', 'user-42');
    const relayed = events.filter((event) => event.type === 'upstream-event');
    expect(relayed.length).toBeGreaterThanOrEqual(3);
    for (const event of relayed) expect(event.data).toMatchObject({ userId: 'user-42' });
    expect(relayed[0]?.data).toMatchObject({ data: { content: '智能' } });
    expect(events.findIndex((event) => event.type === 'upstream-event')).toBeLessThan(events.findIndex((event) => event.type === 'text-delta'));
    // Without a known user, the events are relayed untouched.
    const anonymous = (await replay('json')).events.filter((event) => event.type === 'upstream-event');
    expect(anonymous[0]?.data).not.toHaveProperty('userId');
  });

  it('a stream that ends before its marker is interrupted', async () => {
    expect((await replay('no-marker')).error?.code).toBe('upstream_stream_interrupted');
  });

  it('valueAt follows objects and array indices', () => {
    expect(valueAt({ choices: [{ delta: { content: 'x' } }] }, 'choices.0.delta.content')).toBe('x');
    expect(valueAt({ a: 1 }, 'a.b')).toBeUndefined();
  });
});
