// Recorded company-endpoint streams decode through the configured text path and end marker.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../config/load.js';
import type { ResolvedSignedHttpProvider } from '../../config/config.js';
import type { SluiceError } from '../../errors/sluice-error.js';
import type { StreamEvent } from '../../relay/stream-event.js';
import { readSseEvents } from '../shared/sse-reader.js';
import { decodeEvents, valueAt } from './stream.js';

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

async function replay(name: string): Promise<{ events: StreamEvent[]; error?: SluiceError }> {
  const events: StreamEvent[] = [];
  try {
    for await (const batch of decodeEvents(readSseEvents(reads(name), { maxEventBytes: 1 << 20, provider: 'agent' }), provider)) events.push(...batch);
    return { events };
  } catch (error) {
    return { events, error: error as SluiceError };
  }
}

describe('recorded company-endpoint streams', () => {
  it('maps text through data.content and ends at code -200, characters whole across reads', async () => {
    const { events, error } = await replay('json');
    expect(error).toBeUndefined();
    expect(events).toEqual([{ type: 'text-delta', text: '智能' }, { type: 'text-delta', text: '体 🙂' }, { type: 'end', finishReason: 'stop' }]);
  });

  it('a stream that ends before its marker is interrupted', async () => {
    expect((await replay('no-marker')).error?.code).toBe('upstream_stream_interrupted');
  });

  it('valueAt follows objects and array indices', () => {
    expect(valueAt({ choices: [{ delta: { content: 'x' } }] }, 'choices.0.delta.content')).toBe('x');
    expect(valueAt({ a: 1 }, 'a.b')).toBeUndefined();
  });
});
