// Who may call: API keys (hashed, revoked and expired refused), JWTs, malformed Authorization
// headers, admin routes closed to user and service credentials, service keys acting for end users
// while user keys cannot, and tickets issued for URL-only clients. Real sockets, real keys.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockOpenAi, type MockOpenAi } from './support/mock-openai.js';
import { openAiConfig, startGateway, type TestGateway } from './support/gateway.js';
import { parseOpenAiStream } from './support/chat-client.js';
import { waitFor } from './support/wait.js';

const jwtSecret = 'a-shared-secret-of-at-least-32-characters!';
const directory = mkdtempSync(join(tmpdir(), 'sluice-auth-'));
const storeFile = join(directory, 'sluice.db');

let upstream: MockOpenAi;
let gateway: TestGateway;
let adminKey: string;
let userKey: string;
let serviceKey: string;

beforeAll(async () => {
  upstream = await startMockOpenAi();
  gateway = await startGateway(
    openAiConfig(upstream.baseUrl, upstream.apiKey, {
      auth: { mode: 'both', jwt: { secret: jwtSecret, issuer: 'https://login.example.com', audience: 'sluice' } },
      store: { url: `sqlite:${storeFile}` },
    }),
  );
  adminKey = (await gateway.app.keys.create({ userId: 'root', role: 'admin' })).key;
  userKey = (await gateway.app.keys.create({ userId: 'alice', role: 'user' })).key;
  serviceKey = (await gateway.app.keys.create({ userId: 'backend', role: 'service' })).key;
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
  rmSync(directory, { recursive: true, force: true });
});
beforeEach(() => upstream.reset());

function chat(headers: Record<string, string>, body: Record<string, unknown> = {}): Promise<Response> {
  return fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hi' }], ...body }),
    signal: AbortSignal.timeout(10_000),
  });
}

async function errorOf(response: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  return { status: response.status, code: body.error.code, message: body.error.message };
}

function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

/** How many usage rows this user has, by key id. */
async function usageOf(userId: string): Promise<Record<string, number>> {
  await gateway.app.generations.flushUsage();
  const rows = await gateway.app.store.usage.aggregate({ from: 0, to: Date.now() + 1000, groupBy: ['key'], userId });
  return Object.fromEntries(rows.map((row) => [row.keyId ?? '', row.requests]));
}

const serviceKeyId = () => serviceKey.slice('sk-sluice-'.length, 'sk-sluice-'.length + 12);

describe('API keys', () => {
  it('a valid key streams the answer, and the usage row names its user and key', async () => {
    const response = await chat(bearer(userKey));
    expect(response.status).toBe(200);
    expect(parseOpenAiStream(await response.text()).done).toBe(true);
    await gateway.app.generations.flushUsage();
    const rows = await gateway.app.store.usage.aggregate({ from: 0, to: Date.now() + 1000, groupBy: ['user'], userId: 'alice' });
    expect(rows[0]?.requests).toBeGreaterThanOrEqual(1);
  });

  it('works with the official openai package', async () => {
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: userKey });
    const completion = await client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices[0]?.message.content).toContain('Hello');
    const failing = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'sk-sluice-aaaaaaaaaaaa-wrong', maxRetries: 0 });
    await expect(failing.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it('a wrong secret and an unknown id get the same 401, and the upstream is never called', async () => {
    const [id] = userKey.slice('sk-sluice-'.length).split('-');
    const wrongSecret = await errorOf(await chat(bearer(`sk-sluice-${id ?? ''}-${'x'.repeat(43)}`)));
    const unknownId = await errorOf(await chat(bearer(`sk-sluice-zzzzzzzzzzzz-${'x'.repeat(43)}`)));
    expect(wrongSecret).toMatchObject({ status: 401, code: 'invalid_api_key' });
    expect(unknownId).toEqual(wrongSecret);
    expect(upstream.requests).toHaveLength(0);
  });

  it('the store file holds no key in plain text', async () => {
    const created = await gateway.app.keys.create({ userId: 'carol', role: 'user' });
    const secret = created.key.slice(`sk-sluice-${created.record.id}-`.length);
    const bytes = Buffer.concat([readFileSync(storeFile), ...['-wal', '-shm'].map((suffix) => { try { return readFileSync(storeFile + suffix); } catch { return Buffer.alloc(0); } })]);
    expect(bytes.includes(Buffer.from(secret))).toBe(false);
    expect(bytes.includes(Buffer.from(created.key))).toBe(false);
  });

  it('a revoked key is refused from the next request on', async () => {
    const { key, record } = await gateway.app.keys.create({ userId: 'dave', role: 'user' });
    expect((await chat(bearer(key))).status).toBe(200);
    const revoked = await fetch(`${gateway.url}/admin/keys/${record.id}`, { method: 'DELETE', headers: bearer(adminKey) });
    expect(revoked.status).toBe(200);
    expect(await errorOf(await chat(bearer(key)))).toMatchObject({ status: 401, code: 'api_key_revoked' });
  });

  it('an expired key is refused', async () => {
    const { key } = await gateway.app.keys.create({ userId: 'erin', role: 'user', expiresAt: Date.now() + 150 });
    expect((await chat(bearer(key))).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await errorOf(await chat(bearer(key)))).toMatchObject({ status: 401, code: 'api_key_expired' });
  });
});

describe('malformed Authorization headers get 401 with a message saying the expected form', () => {
  it.each([
    ['no header', {}],
    ['Basic credentials', { authorization: 'Basic YWxpY2U6c2VjcmV0' }],
    ['Bearer with no token', { authorization: 'Bearer' }],
    ['Bearer with two tokens', { authorization: 'Bearer one two' }],
    ['a bare key without Bearer', { authorization: 'sk-sluice-abc' }],
  ])('%s', async (_name, headers: Record<string, string>) => {
    const error = await errorOf(await chat(headers));
    expect(error.status).toBe(401);
    expect(error.message).toMatch(/Bearer/);
  });

  it('the scheme is case-insensitive (RFC 7235)', async () => {
    expect((await chat({ authorization: `bearer ${userKey}` })).status).toBe(200);
  });
});

describe('JWT (mode both)', () => {
  async function token(claims: Record<string, unknown>, options: { secret?: string; expiresIn?: string; audience?: string } = {}): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('https://login.example.com')
      .setAudience(options.audience ?? 'sluice')
      .setIssuedAt()
      .setExpirationTime(options.expiresIn ?? '5m')
      .sign(new TextEncoder().encode(options.secret ?? jwtSecret));
  }

  it('a good token is accepted and its subject is the user', async () => {
    const response = await chat(bearer(await token({ sub: 'jwt-user-1' })));
    expect(response.status).toBe(200);
    await response.text();
    // No key: the row names the user alone.
    expect(await usageOf('jwt-user-1')).toEqual({ '': 1 });
  });

  it('a bad signature, an expired token and a wrong audience are refused with invalid_token', async () => {
    for (const bad of [await token({ sub: 'u' }, { secret: 'another-secret-of-at-least-32-characters' }), await token({ sub: 'u' }, { expiresIn: '-1m' }), await token({ sub: 'u' }, { audience: 'someone-else' })]) {
      expect(await errorOf(await chat(bearer(bad)))).toMatchObject({ status: 401, code: 'invalid_token' });
    }
    expect(upstream.requests).toHaveLength(0);
  });

  it('a JWT with role admin reaches the admin routes; one without a role does not', async () => {
    expect((await fetch(`${gateway.url}/admin/keys`, { headers: bearer(await token({ sub: 'ops', role: 'admin' })) })).status).toBe(200);
    expect((await fetch(`${gateway.url}/admin/keys`, { headers: bearer(await token({ sub: 'ops' })) })).status).toBe(403);
  });
});

describe('admin routes', () => {
  it('refuse user and service credentials with 403, and no credential with 401', async () => {
    for (const key of [userKey, serviceKey]) {
      for (const [method, path] of [['GET', '/admin/keys'], ['POST', '/admin/keys'], ['DELETE', '/admin/keys/abc'], ['GET', '/admin/usage']] as const) {
        const response = await fetch(`${gateway.url}${path}`, { method, headers: { ...bearer(key), 'content-type': 'application/json' }, ...(method === 'POST' ? { body: '{}' } : {}) });
        expect({ path, method, status: response.status, code: (await errorOf(response)).code }).toEqual({ path, method, status: 403, code: 'forbidden' });
      }
    }
    expect((await fetch(`${gateway.url}/admin/keys`)).status).toBe(401);
  });

  it('create shows the secret once; list never shows it or its hash', async () => {
    const created = await fetch(`${gateway.url}/admin/keys`, {
      method: 'POST',
      headers: { ...bearer(adminKey), 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'frank', role: 'user', name: 'frank laptop', limits: { requestsPerMinute: 30 } }),
    });
    expect(created.status).toBe(201);
    const body = (await created.json()) as { id: string; key: string; limits: Record<string, number> };
    expect(body.key).toMatch(/^sk-sluice-[a-z0-9]{12}-[A-Za-z0-9_-]{43}$/);
    expect(body.limits).toEqual({ requestsPerMinute: 30 });
    expect((await chat(bearer(body.key))).status).toBe(200);
    const listText = await (await fetch(`${gateway.url}/admin/keys?userId=frank`, { headers: bearer(adminKey) })).text();
    const list = JSON.parse(listText) as { data: { id: string }[] };
    expect(list.data.map((key) => key.id)).toEqual([body.id]);
    expect(listText).not.toContain(body.key.slice(-43));
    expect(listText).not.toMatch(/secretHash|[0-9a-f]{64}/);
  });

  it('bad input names the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ role: 'user' }, 'userId'],
      [{ userId: 'x', role: 'root' }, 'role'],
      [{ userId: 'has space', role: 'user' }, 'userId'],
      [{ userId: 'x', role: 'user', limits: { requestsPerMinute: -1 } }, 'limits.requestsPerMinute'],
      [{ userId: 'x', role: 'user', limits: { rpm: 5 } }, 'limits.rpm'],
      [{ userId: 'x', role: 'user', expiresAt: 'tomorrow' }, 'expiresAt'],
      [{ userId: 'x', role: 'user', expiresAt: '2001-01-01' }, 'expiresAt'],
    ];
    for (const [body, param] of cases) {
      const response = await fetch(`${gateway.url}/admin/keys`, { method: 'POST', headers: { ...bearer(adminKey), 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const error = (await response.json()) as { error: { param: string; code: string } };
      expect({ body, status: response.status, param: error.error.param }).toEqual({ body, status: 400, param });
    }
  });

  it('revoking an unknown key is a 404', async () => {
    expect((await fetch(`${gateway.url}/admin/keys/nosuchkey123`, { method: 'DELETE', headers: bearer(adminKey) })).status).toBe(404);
  });
});

describe('acting for a user', () => {
  it('a service key may name the end user with the OpenAI user field or X-Sluice-User', async () => {
    await (await chat(bearer(serviceKey), { user: 'end-user-7' })).text();
    expect(await usageOf('end-user-7')).toEqual({ [serviceKeyId()]: 1 });
    await (await chat({ ...bearer(serviceKey), 'x-sluice-user': 'end-user-8' })).text();
    expect(await usageOf('end-user-8')).toEqual({ [serviceKeyId()]: 1 });
    // The provider is told who the end user is, too.
    await waitFor(() => upstream.requests.length === 2, 'two upstream requests');
    expect(upstream.requests[0]?.body['user']).toBe('end-user-7');
  });

  it('a user key that tries gets 403, and nothing reaches the provider', async () => {
    expect(await errorOf(await chat(bearer(userKey), { user: 'mallory' }))).toMatchObject({ status: 403, code: 'forbidden' });
    expect(await errorOf(await chat({ ...bearer(userKey), 'x-sluice-user': 'mallory' }))).toMatchObject({ status: 403, code: 'forbidden' });
    expect(upstream.requests).toHaveLength(0);
    // Naming itself is not acting for someone else.
    expect((await chat(bearer(userKey), { user: 'alice' })).status).toBe(200);
  });
});

describe('tickets', () => {
  it('POST /api/tickets returns a short URL-safe ticket that expires', async () => {
    const response = await fetch(`${gateway.url}/api/tickets`, { method: 'POST', headers: bearer(userKey) });
    expect(response.status).toBe(201);
    const body = (await response.json()) as { ticket: string; expiresAt: string; expiresInMs: number };
    expect(body.ticket).toMatch(/^[A-Za-z0-9_-]{20,64}$/);
    expect(body.expiresInMs).toBe(60_000);
    expect(Date.parse(body.expiresAt)).toBeGreaterThan(Date.now());
  });

  it('a ticket is no credential for routes that do not take tickets', async () => {
    const { ticket } = (await (await fetch(`${gateway.url}/api/tickets`, { method: 'POST', headers: bearer(userKey) })).json()) as { ticket: string };
    const response = await fetch(`${gateway.url}/v1/chat/completions?ticket=${ticket}`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(401);
  });
});
