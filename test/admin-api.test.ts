// The admin JSON routes behind the operator console (docs/admin-api.md), against a real gateway
// with API keys: every route refuses a missing credential (401) and a user or service key (403
// naming the role); bad query strings and bodies are refused naming the field; and each route
// answers from what really happened: requests made with the official `openai` package show up in
// the request log (with their text only while log.requests is on), the overview's counts and the
// providers' last hour; a running generation is listed and cancelled; a hub connection is listed
// by node and user, reached by a push and closed.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './support/gateway.js';
import { waitFor } from './support/wait.js';

interface ErrorBody {
  error: { code: string; message: string; param: string | null };
}

const adminRoutes: readonly (readonly [method: string, path: string])[] = [
  ['GET', '/admin/session'],
  ['GET', '/admin/overview'],
  ['GET', '/admin/requests'],
  ['GET', '/admin/providers'],
  ['GET', '/admin/connections'],
  ['DELETE', '/admin/connections/alice'],
  ['POST', '/admin/push'],
  ['GET', '/admin/generations'],
  ['POST', '/admin/generations/abc/cancel'],
];

function gatewayConfig(logRequests: boolean): Record<string, unknown> {
  return {
    auth: { mode: 'keys' },
    log: { level: 'warn', requests: logRequests },
    providers: { demo: { type: 'mock', chunkCount: 4, delayMs: 5 }, slow: { type: 'mock', chunkCount: 400, delayMs: 50 } },
    models: { demo: { provider: 'demo', model: 'sluice-demo' }, slow: { provider: 'slow', model: 'sluice-demo' } },
    defaultModel: 'demo',
  };
}

describe('the admin JSON routes', () => {
  let gateway: TestGateway;
  let adminKey = '';
  let userKey = '';
  let serviceKey = '';
  let userKeyId = '';

  const call = (method: string, path: string, key: string | undefined, body?: unknown) =>
    fetch(`${gateway.url}${path}`, {
      method,
      headers: { ...(key !== undefined ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  const admin = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const response = await call(method, path, adminKey, body);
    expect(response.status, `${method} ${path}: ${await response.clone().text()}`).toBe(200);
    return (await response.json()) as T;
  };
  const refusal = async (method: string, path: string, body?: unknown) => {
    const response = await call(method, path, adminKey, body);
    return { status: response.status, ...((await response.json()) as ErrorBody).error };
  };

  beforeAll(async () => {
    gateway = await startGateway(gatewayConfig(true));
    adminKey = (await gateway.app.keys.create({ userId: 'ops', role: 'admin' })).key;
    const user = await gateway.app.keys.create({ userId: 'alice', role: 'user' });
    userKey = user.key;
    userKeyId = user.record.id;
    serviceKey = (await gateway.app.keys.create({ userId: 'backend', role: 'service' })).key;
  });

  afterAll(async () => {
    await gateway?.close();
  });

  it('refuses every admin route without a credential (401) and with a user or service key (403 naming the role)', async () => {
    for (const [method, path] of adminRoutes) {
      const anonymous = await call(method, path, undefined);
      expect({ method, path, status: anonymous.status }).toEqual({ method, path, status: 401 });
      for (const [key, role] of [
        [userKey, 'user'],
        [serviceKey, 'service'],
      ] as const) {
        const response = await call(method, path, key);
        const body = (await response.json()) as ErrorBody;
        expect({ method, path, status: response.status, code: body.error.code }).toEqual({ method, path, status: 403, code: 'forbidden' });
        expect(body.error.message).toContain(`role "${role}"`);
      }
    }
  });

  it('answers the session of an admin key', async () => {
    const session = await admin<Record<string, unknown>>('GET', '/admin/session');
    expect(session).toMatchObject({ userId: 'ops', role: 'admin', via: 'key', requestTextLogged: true, node: gateway.app.hub.nodeId });
  });

  it('refuses bad input naming the field', async () => {
    const cases: [method: string, path: string, body: unknown, param: string][] = [
      ['GET', '/admin/overview?window=week', undefined, 'window'],
      ['GET', '/admin/overview?windw=hour', undefined, 'windw'],
      ['GET', '/admin/requests?outcome=maybe', undefined, 'outcome'],
      ['GET', '/admin/requests?limit=0', undefined, 'limit'],
      ['GET', '/admin/requests?limit=501', undefined, 'limit'],
      ['GET', '/admin/requests?limit=ten', undefined, 'limit'],
      ['GET', '/admin/requests?from=yesterday', undefined, 'from'],
      ['GET', '/admin/requests?to=2026-13-01T00:00:00Z', undefined, 'to'],
      ['GET', '/admin/requests?user=alice', undefined, 'user'],
      ['GET', '/admin/connections?userId=', undefined, 'userId'],
      ['POST', '/admin/push', { event: 'notice', data: 1 }, 'to'],
      ['POST', '/admin/push', { to: { users: ['alice'] }, event: 'bad name!', data: 1 }, 'event'],
      ['POST', '/admin/push', { to: { users: ['alice'] }, event: 'notice' }, 'data'],
      ['POST', '/admin/generations/not%20an%20id/cancel', undefined, 'id'],
      ['POST', '/admin/keys', { userId: 'bob', role: 'root' }, 'role'],
    ];
    for (const [method, path, body, param] of cases) {
      const answer = await refusal(method, path, body);
      expect({ path, status: answer.status, code: answer.code, param: answer.param }).toEqual({ path, status: 400, code: 'invalid_request', param });
      expect(answer.message).toContain(param);
    }
    expect(await refusal('POST', '/admin/generations/nosuchgeneration/cancel')).toMatchObject({ status: 404, code: 'not_found' });
  });

  it('logs requests made with the openai package, with their text, and counts them in the overview and the providers', async () => {
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: userKey, maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'Hello <b>console</b>' }] });
    const answer = completion.choices[0]?.message.content ?? '';
    expect(answer.length).toBeGreaterThan(0);
    await expect(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] })).rejects.toThrow();
    await gateway.app.generations.flushUsage();

    interface Entry {
      userId: string;
      keyId: string | null;
      model: string;
      route: string | null;
      outcome: string;
      totalTokens: number;
      durationMs: number;
      timeToFirstTokenMs: number | null;
      cost: string | null;
    currency: string | null;
      prompt?: string;
      answer?: string;
    }
    let log = await admin<{ textLogged: boolean; data: Entry[] }>('GET', '/admin/requests?userId=alice');
    expect(log.textLogged).toBe(true);
    const entry = log.data.find((row) => row.model === 'demo');
    expect(entry).toMatchObject({ userId: 'alice', keyId: userKeyId, model: 'demo', route: 'chat-completions', outcome: 'completed', cost: null, currency: null, answer });
    expect(entry?.totalTokens).toBeGreaterThan(0);
    expect(JSON.parse(entry?.prompt ?? 'null')).toEqual([{ role: 'user', content: 'Hello <b>console</b>' }]);

    log = await admin('GET', '/admin/requests?outcome=error&model=demo');
    expect(log.data).toEqual([]);
    log = await admin('GET', `/admin/requests?from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
    expect(log.data).toEqual([]);
    log = await admin('GET', '/admin/requests?limit=1');
    expect(log.data).toHaveLength(1);

    const overview = await admin<{ now: Record<string, unknown>; series: Record<string, (number | null)[]>; errorsByCode: Record<string, number> }>('GET', '/admin/overview');
    expect(overview.now['requestsToday']).toBeGreaterThanOrEqual(1);
    expect(overview.now['tokensToday']).toBe(entry?.totalTokens);
    expect(overview.now['costToday']).toEqual([]);
    expect(overview.series['start']).toHaveLength(60);
    expect(overview.series['requestsPerMinute']?.reduce<number>((sum, value) => sum + (value ?? 0), 0)).toBeGreaterThanOrEqual(1);
    expect(overview.series['ttftP50Ms']?.some((value) => value !== null)).toBe(true);
    const day = await admin<{ series: Record<string, unknown[]>; bucketMs: number }>('GET', '/admin/overview?window=day');
    expect({ buckets: day.series['start']?.length, bucketMs: day.bucketMs }).toEqual({ buckets: 96, bucketMs: 900_000 });

    const providers = await admin<{ data: { id: string; type: string; status: string; targets: { id: string; state: string; aliases: string[] }[]; lastHour: { requests: number; errors: number } }[] }>('GET', '/admin/providers');
    const demo = providers.data.find((provider) => provider.id === 'demo');
    expect(demo).toMatchObject({ type: 'mock', status: 'healthy', targets: [{ id: 'demo/sluice-demo', state: 'healthy', aliases: ['demo'] }] });
    expect(demo?.lastHour.requests).toBe(1);
  });

  it('lists a running generation and cancels it', async () => {
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: userKey, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'slow', stream: true, messages: [{ role: 'user', content: 'take your time' }] });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    const running = await admin<{ node: string; data: { id: string; userId: string; model: string; committed: boolean }[] }>('GET', '/admin/generations');
    const generation = running.data.find((row) => row.model === 'slow');
    expect(generation).toMatchObject({ userId: 'alice', model: 'slow', committed: true });
    expect(await admin('POST', `/admin/generations/${generation?.id ?? ''}/cancel`)).toEqual({ id: generation?.id, cancelled: true });
    // The stream ends (with an error chunk, or closed) instead of running its 20 seconds.
    const drained = (async () => {
      try {
        for (let next = await iterator.next(); !next.done; next = await iterator.next());
      } catch {
        // the cancellation arrives as an error chunk; the SDK throws it
      }
    })();
    await drained;
    await gateway.app.generations.flushUsage();
    const cancelled = await admin<{ data: { outcome: string; errorCode: string | null }[] }>('GET', '/admin/requests?model=slow');
    expect(cancelled.data[0]).toMatchObject({ outcome: 'cancelled' });
    expect((await admin<{ data: unknown[] }>('GET', '/admin/generations')).data).toEqual([]);
  });

  it('lists hub connections by node and user, pushes to one, and closes them', async () => {
    const controller = new AbortController();
    const events = await fetch(`${gateway.url}/api/events`, { headers: { authorization: `Bearer ${userKey}` }, signal: controller.signal });
    expect(events.status).toBe(200);
    const reader: ReadableStreamDefaultReader<Uint8Array> = events.body!.getReader();
    let received = '';
    const reading = (async () => {
      const decoder = new TextDecoder();
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) received += decoder.decode(chunk.value);
    })().catch(() => undefined);
    let listed = await admin<{ total: number; nodes: { node: string; total: number; users: { userId: string; connections: number }[] }[] }>('GET', '/admin/connections');
    for (let attempt = 0; listed.total === 0 && attempt < 50; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      listed = await admin('GET', '/admin/connections');
    }
    expect(listed.nodes).toEqual([{ node: gateway.app.hub.nodeId, total: 1, users: [{ userId: 'alice', connections: 1 }] }]);
    expect(await admin('POST', '/admin/push', { to: { users: ['alice'] }, event: 'notice', data: { text: 'hello alice' } })).toMatchObject({ connections: 1 });
    await waitFor(() => received.includes('hello alice'), 'the push on the event stream');
    expect(await admin('DELETE', '/admin/connections/alice')).toEqual({ userId: 'alice', closed: 1 });
    await reading;
    expect(received).toContain('event: close');
    controller.abort();
  });
});

describe('the request log without log.requests', () => {
  it('keeps no prompt or answer text', async () => {
    const gateway = await startGateway(gatewayConfig(false));
    try {
      const adminKey = (await gateway.app.keys.create({ userId: 'ops', role: 'admin' })).key;
      const userKey = (await gateway.app.keys.create({ userId: 'bob', role: 'user' })).key;
      const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: userKey, maxRetries: 0 });
      await client.chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'secret plans' }] });
      await gateway.app.generations.flushUsage();
      const response = await fetch(`${gateway.url}/admin/requests`, { headers: { authorization: `Bearer ${adminKey}` } });
      const log = (await response.json()) as { textLogged: boolean; data: Record<string, unknown>[] };
      expect(log.textLogged).toBe(false);
      expect(log.data).toHaveLength(1);
      expect(log.data[0]).toMatchObject({ userId: 'bob', outcome: 'completed' });
      expect(Object.keys(log.data[0] ?? {})).not.toContain('prompt');
      expect(await gateway.app.store.requestLog.get(log.data.map((row) => String(row['generationId'])))).toEqual([]);
    } finally {
      await gateway.close();
    }
  });
});
