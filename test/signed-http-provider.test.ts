// The signed-http provider end to end: ak-sk-sha256, header and bearer schemes verified by a mock
// endpoint, text mapped through the configured path, the end marker, user id added, trace
// headers passed through, cancellation.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signAkSk } from '../src/providers/signed-http/request.js';
import { startMockSignedHttp, type MockSignedHttp } from './support/mock-signed-http.js';
import { abortStreamAfterFirstRead, startGateway, type TestGateway } from './support/gateway.js';
import { postNativeChat } from './support/native-client.js';
import { cancelWithinMs } from './support/wait.js';

let upstream: MockSignedHttp;
let gateway: TestGateway;

const provider = (path: string, auth: Record<string, unknown>) => ({
  type: 'signed-http',
  url: `${upstream.url}/${path}/agent`,
  auth,
  textPath: 'data.content',
  endWhen: { path: 'code', equals: -200 },
  passHeaders: ['x-trace-id'],
});

beforeAll(async () => {
  upstream = await startMockSignedHttp();
  gateway = await startGateway({
    providers: {
      agent: provider('aksk', { scheme: 'ak-sk-sha256', ak: upstream.ak, sk: upstream.sk }),
      wrongsk: provider('aksk', { scheme: 'ak-sk-sha256', ak: upstream.ak, sk: 'not-the-sk-31337' }),
      keyed: provider('header', { scheme: 'header', name: 'x-api-key', key: upstream.apiKey }),
      bearer: provider('bearer', { scheme: 'bearer', key: upstream.apiKey }),
      plain: { type: 'signed-http', url: `${upstream.url}/header/agent`, auth: { scheme: 'header', name: 'x-api-key', key: upstream.apiKey } },
    },
  });
});
afterAll(async () => {
  await gateway.close();
  await upstream.close();
});
beforeEach(() => upstream.reset());

async function post(model: string, extra: Record<string, unknown> = {}): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: '问题' }], ...extra }),
  });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

const contentOf = (text: string) =>
  text
    .split('\n')
    .filter((line) => line.startsWith('data: {'))
    .map((line) => (JSON.parse(line.slice(6)) as { choices?: { delta: { content?: string } }[] }).choices?.[0]?.delta.content ?? '')
    .join('');

describe('signed-http on the native API', () => {
  it('relays the agent\'s own events as they came, with the end user\'s id added, next to the text deltas and the trace header', async () => {
    const read = await postNativeChat(gateway.url, { message: '问题', model: 'agent/default' }, { headers: { 'x-sluice-user': 'alice' } });
    expect(read.status).toBe(200);
    expect(read.text).toBe('智能体回答：问题');
    expect(read.headers.get('x-trace-id')).toBeTruthy();
    const relayed = read.events.filter((event) => event.event === 'upstream');
    expect(relayed.length).toBeGreaterThan(1);
    for (const event of relayed) expect(event.data['data']).toMatchObject({ userId: 'alice' });
    expect(relayed.at(-1)?.data['data']).toMatchObject({ code: -200 });
    // The agent was told who the user is, too.
    expect(upstream.requests[0]?.body).toMatchObject({ userId: 'alice' });
  });
});

describe('signed-http provider', () => {
  it('signs with ak-sk-sha256 over the body exactly as sent, and streams the mapped text', async () => {
    const result = await post('agent/default', { stream: true, user: 'alice' });
    expect(result.status).toBe(200);
    expect(contentOf(result.text)).toBe('智能体回答：问题');
    expect(result.text).toContain('data: [DONE]');
    const sent = upstream.requests[0]!;
    expect(sent.headers['signature']).toBe(signAkSk(upstream.ak, upstream.sk, String(sent.headers['requesttime']), sent.rawBody));
    expect(sent.headers['content-type']).toBe('application/json;charset=UTF-8');
    expect(sent.body['userId']).toBe('alice');
  });

  it('signAkSk is the lowercase hex SHA-256 of ak + sk + requestTime + body', () => {
    expect(signAkSk('ak', 'sk', '1700000000000', '{"a":1}')).toBe(createHash('sha256').update('aksk1700000000000{"a":1}').digest('hex'));
  });

  it('passes the configured response headers through, and only those', async () => {
    const result = await post('agent/default', { stream: true });
    expect(result.headers.get('x-trace-id')).toBe('trace-123abc');
    expect(result.headers.get('x-internal')).toBeNull();
    const json = await post('agent/default');
    expect(json.headers.get('x-trace-id')).toBe('trace-123abc');
    expect((JSON.parse(json.text) as { choices: { message: { content: string } }[] }).choices[0]?.message.content).toBe('智能体回答：问题');
  });

  it('a wrong sk is refused with a clear error that does not contain it', async () => {
    const result = await post('wrongsk/default');
    expect(result.status).toBe(502);
    expect(result.text).toContain('upstream_auth_failed');
    expect(result.text).not.toContain('not-the-sk-31337');
    expect(gateway.logs.join('')).not.toContain('not-the-sk-31337');
  });

  it('a requestTime more than 5 minutes off is refused', async () => {
    const skewed = await startGateway({ providers: { agent: provider('aksk', { scheme: 'ak-sk-sha256', ak: upstream.ak, sk: upstream.sk }) } }, {}, { now: () => Date.now() - 10 * 60_000 });
    try {
      const response = await fetch(`${skewed.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'agent/x', messages: [{ role: 'user', content: 'q' }] }) });
      expect(response.status).toBe(502);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('upstream_auth_failed');
    } finally {
      await skewed.close();
    }
  });

  it('the header and bearer schemes send the key where configured', async () => {
    expect(contentOf((await post('keyed/default', { stream: true })).text)).toBe('智能体回答：问题');
    expect(upstream.requests[0]?.headers['x-api-key']).toBe(upstream.apiKey);
    expect(contentOf((await post('bearer/default', { stream: true })).text)).toBe('智能体回答：问题');
    expect(upstream.requests[1]?.headers.authorization).toBe(`Bearer ${upstream.apiKey}`);
  });

  it('plain-text events are the text, and the end of the stream ends the answer when no marker is set', async () => {
    upstream.plan = { plain: true, pieces: ['纯文本', ' 🙂'] };
    const result = await post('plain/default', { stream: true });
    expect(contentOf(result.text)).toBe('纯文本 🙂');
    expect(result.text).toContain('data: [DONE]');
  });

  it('closes the upstream request within a second of the client leaving', async () => {
    upstream.plan = { pieces: Array.from({ length: 40 }, (_, index) => `p${index.toString()}`), delayMs: 40 };
    const abortedAt = await abortStreamAfterFirstRead(gateway.url, { model: 'agent/default', stream: true, messages: [{ role: 'user', content: 'q' }] });
    expect((await upstream.requests[0]!.closed) - abortedAt).toBeLessThan(cancelWithinMs);
  });
});
