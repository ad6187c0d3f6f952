// The benchmark's references must relay a stream byte for byte (status and content-type too), or
// their figures mean nothing; and the results writer must replace only the marked section of
// docs/benchmarks.md. The relays run as the bench runs them: processes of their own (bench/*.mjs)
// in front of an upstream here that checks the bench key exactly.
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchKey, nginxPath, startNginx, startScript, stopAll, type BenchTarget } from '../bench/processes.mjs';
import { endMarker, fitSlope, markdownTable, percentile, perRoundDifference, replaceResults, rssGrowth, slope, startMarker } from '../bench/report.mjs';

// Written as separate writes, with a three-byte character split between two of them, so a relay
// that decoded and re-encoded text per chunk would show it.
const euro = Buffer.from('€', 'utf8');
const parts = [
  Buffer.from('data: {"choices":[{"delta":{"content":"price: '),
  euro.subarray(0, 1),
  Buffer.concat([euro.subarray(1), Buffer.from(' 5"}}]}\n\n')]),
  Buffer.from(`data: {"choices":[{"delta":{"content":"${'x'.repeat(70_000)}"}}]}\n\n`),
  Buffer.from('data: [DONE]\n\n'),
];
const expected = Buffer.concat(parts);

let upstream: Server;
let upstreamUrl: string;
const received: string[] = [];

beforeAll(async () => {
  upstream = createServer((request, response) => {
    const body: Buffer[] = [];
    request.on('data', (part: Buffer) => body.push(part));
    request.on('end', () => {
      received.push(Buffer.concat(body).toString());
      if (request.headers.authorization !== `Bearer ${benchKey}`) {
        response.writeHead(401, { 'content-type': 'application/json' });
        response.end('{"error":{"message":"bad key"}}');
        return;
      }
      if (request.url !== '/v1/chat/completions') {
        response.writeHead(404).end();
        return;
      }
      if ((JSON.parse(Buffer.concat(body).toString()) as { model: string }).model === 'busy') {
        response.writeHead(429, { 'content-type': 'application/problem+json' });
        response.end('{"error":"slow down"}');
        return;
      }
      response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      const write = (index: number): void => {
        const part = parts[index];
        if (part === undefined) {
          response.end();
          return;
        }
        response.write(part);
        setTimeout(() => write(index + 1), 5);
      };
      write(0);
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port.toString()}`;
});
afterAll(async () => {
  await stopAll();
  await new Promise((resolve) => upstream.close(resolve));
});

/** As the bench's driver sends it: with the bench key, which nginx passes on and the Node relays replace with their own. */
async function post(target: BenchTarget, model: string): Promise<{ status: number; contentType: string | null; bytes: Buffer }> {
  const response = await fetch(`${target.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${benchKey}` }, body: JSON.stringify({ model, stream: true }) });
  return { status: response.status, contentType: response.headers.get('content-type'), bytes: Buffer.from(await response.arrayBuffer()) };
}

const relays: [string, () => Promise<BenchTarget | undefined>][] = [
  ['the lean relay (undici Pool)', () => startScript('lean-relay.mjs', { UPSTREAM_URL: `${upstreamUrl}/v1` })],
  ['the fetch hand relay', () => startScript('hand-relay.mjs', { UPSTREAM_URL: `${upstreamUrl}/v1` })],
];
if (existsSync(nginxPath)) relays.push(['nginx', () => startNginx(upstreamUrl)]);

describe.each(relays)('%s', (_name, start) => {
  let relay: BenchTarget;
  beforeAll(async () => {
    const started = await start();
    if (!started) throw new Error('did not start');
    relay = started;
  });
  afterAll(async () => {
    await relay?.stop();
  });

  it('relays a stream byte for byte, with its status and content-type, sending the bench key upstream', async () => {
    received.length = 0;
    const answer = await post(relay, 'm');
    expect(answer.status).toBe(200);
    expect(answer.contentType).toBe('text/event-stream; charset=utf-8');
    expect(answer.bytes.equals(expected)).toBe(true);
    expect(received).toEqual([JSON.stringify({ model: 'm', stream: true })]);
  });

  it("passes an upstream error's status and body through", async () => {
    const answer = await post(relay, 'busy');
    expect(answer.status).toBe(429);
    expect(answer.contentType).toBe('application/problem+json');
    expect(answer.bytes.toString()).toBe('{"error":"slow down"}');
  });
});

describe('the results writer', () => {
  const page = ['# Benchmarks', '', 'intro', startMarker, 'old table', 'old line', endMarker, '', '## Method', 'kept'].join('\n');

  it('replaces only the text between the markers', () => {
    const table = markdownTable(['measure', 'Sluice'], [['CPU', '1.0'], ['a | b', 2]]);
    const written = replaceResults(page, table);
    expect(written).toBe(['# Benchmarks', '', 'intro', startMarker, '| measure | Sluice |', '| --- | --- |', '| CPU | 1.0 |', '| a \\| b | 2 |', endMarker, '', '## Method', 'kept'].join('\n'));
    expect(replaceResults(written, 'new')).toBe(['# Benchmarks', '', 'intro', startMarker, 'new', endMarker, '', '## Method', 'kept'].join('\n'));
  });

  it('refuses a page without exactly one section in order', () => {
    expect(() => replaceResults('# Benchmarks\n', 'x')).toThrow(/no results section/);
    expect(() => replaceResults(`${page}\n${startMarker}\n${endMarker}`, 'x')).toThrow(/more than one/);
    expect(() => replaceResults(`${endMarker}\n${startMarker}`, 'x')).toThrow(/before the start/);
  });

  it('finds the section in docs/benchmarks.md', () => {
    const docs = readFileSync(new URL('../docs/benchmarks.md', import.meta.url), 'utf8');
    const written = replaceResults(docs, 'table');
    expect(written.slice(written.indexOf(endMarker))).toBe(docs.slice(docs.indexOf(endMarker)));
    expect(written.slice(0, written.indexOf(startMarker))).toBe(docs.slice(0, docs.indexOf(startMarker)));
  });

  it("computes the soak's RSS slope by least squares", () => {
    expect(slope([{ x: 0, y: 10 }, { x: 1, y: 12 }, { x: 2, y: 14 }])).toBe(2);
    expect(slope([{ x: 0, y: 5 }, { x: 1, y: 7 }, { x: 2, y: 5 }, { x: 3, y: 7 }])).toBeCloseTo(0.4);
    expect(slope([{ x: 1, y: 1 }])).toBeUndefined();
  });

  it("gives the slope's standard error: none on a straight line, more the more the points scatter", () => {
    expect(fitSlope([{ x: 0, y: 10 }, { x: 1, y: 12 }, { x: 2, y: 14 }])).toEqual({ slope: 2, error: 0 });
    // Around y = 5.4 + 0.4x the residuals are −0.4, 1.2, −1.2, 0.4: their squares sum to 3.2 over
    // 4 − 2 degrees of freedom, and Σ(x − x̄)² = 5.
    const scattered = fitSlope([{ x: 0, y: 5 }, { x: 1, y: 7 }, { x: 2, y: 5 }, { x: 3, y: 7 }]);
    expect(scattered?.slope).toBeCloseTo(0.4);
    expect(scattered?.error).toBeCloseTo(Math.sqrt(3.2 / 2 / 5));
    expect(fitSlope([{ x: 0, y: 1 }, { x: 1, y: 2 }])).toEqual({ slope: 1, error: undefined });
    expect(fitSlope([{ x: 1, y: 1 }])).toBeUndefined();
  });
});

describe('memory growth per stream or connection', () => {
  const mb = 2 ** 20;
  it("leaves out the young generation's resident growth, which RSS holds, and not its size", () => {
    // As read off the hand-written endpoint: its young generation grew from 4 to 32 MB, of which
    // 3 and then 27 MB were resident.
    const before = { rss: 100 * mb, newSpace: 4 * mb, newSpaceResident: 3 * mb };
    const after = { rss: 160 * mb, newSpace: 32 * mb, newSpaceResident: 27 * mb };
    expect(rssGrowth(before, after)).toBe(36 * mb);
  });

  it('falls back to the size where the resident figure is missing, and to all of RSS without either (nginx)', () => {
    expect(rssGrowth({ rss: 10 * mb, newSpace: 4 * mb }, { rss: 50 * mb, newSpace: 32 * mb })).toBe(12 * mb);
    expect(rssGrowth({ rss: 10 * mb }, { rss: 50 * mb })).toBe(40 * mb);
  });
});

describe('added latency judged round by round', () => {
  it("takes the median of each round's difference, not the difference of the overall medians", () => {
    // A slow round moves both targets; the per-round differences stay near +0.1.
    const sluice = [1.1, 2.1, 1.2, 3.0, 1.15];
    const lean = [1.0, 2.0, 1.1, 2.95, 1.0];
    const { difference, lowest, highest, rounds } = perRoundDifference(sluice, lean);
    expect(difference).toBeCloseTo(0.1, 10);
    expect(lowest).toBeCloseTo(0.05, 10);
    expect(highest).toBeCloseTo(0.15, 10);
    expect(rounds).toBe(5);
  });
});

describe('the percentile the bench reports', () => {
  const upTo = (n: number) => Array.from({ length: n }, (_, index) => n - index); // n, n − 1, … 1: unsorted

  it('is the nearest rank: a p99 of 100 round times is the 99th, not the slowest', () => {
    expect(percentile(upTo(100), 0.99)).toBe(99);
    expect(percentile(upTo(200), 0.99)).toBe(198);
  });

  it('is the largest value when there are too few for the fraction (a p99 of 20 rounds)', () => {
    expect(percentile(upTo(20), 0.99)).toBe(20);
    expect(percentile(upTo(99), 0.99)).toBe(99);
  });

  it('takes the lower middle value of an even count as the p50, the middle one of an odd count', () => {
    expect(percentile([4, 1, 3, 2], 0.5)).toBe(2);
    expect(percentile([5, 1, 3], 0.5)).toBe(3);
    expect(percentile([7], 0.5)).toBe(7);
    expect(percentile([], 0.5)).toBeUndefined();
  });
});
