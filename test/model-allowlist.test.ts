// Keys and JWTs limited to some models, through a real gateway: the official `openai` client gets
// its answer for an allowed model, a PermissionDeniedError (403 model_not_allowed) for any other
// (unknown ones included, so the list hides what exists) and only the allowed models from
// models.list(); the refusal reaches no upstream and leaves a refused usage row. The same holds for
// a JWT's models claim, for a service key acting for a user, for the native API and for a
// WebSocket opened with a ticket. POST /admin/keys checks the list, naming the field.
import { SignJWT, type JWTPayload } from 'jose';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockOpenAi, type MockOpenAi } from './support/mock-openai.js';
import { openAiConfig, startGateway, type TestGateway } from './support/gateway.js';

const jwtSecret = 'a-shared-secret-of-at-least-32-characters!';

let upstream: MockOpenAi;
let gateway: TestGateway;
let adminKey: string;
/** alice's key, limited to `chat`. */
let chatOnlyKey: string;
let chatOnlyKeyId: string;
let unrestrictedKey: string;
/** A service key limited to `chat`, to act for end users. */
let serviceKey: string;

beforeAll(async () => {
  upstream = await startMockOpenAi();
  gateway = await startGateway(
    openAiConfig(upstream.baseUrl, upstream.apiKey, {
      models: { chat: { provider: 'upstream', model: 'gpt-4o-mini' }, 'gpt-test': { provider: 'upstream', model: 'gpt-4o-mini' }, 'gpt-other': { provider: 'upstream', model: 'gpt-4o' } },
      defaultModel: 'gpt-test',
      auth: { mode: 'both', jwt: { secret: jwtSecret } },
    }),
  );
  adminKey = (await gateway.app.keys.create({ userId: 'root', role: 'admin' })).key;
  const chatOnly = await gateway.app.keys.create({ userId: 'alice', role: 'user', models: ['chat'] });
  chatOnlyKey = chatOnly.key;
  chatOnlyKeyId = chatOnly.record.id;
  unrestrictedKey = (await gateway.app.keys.create({ userId: 'bob', role: 'user' })).key;
  serviceKey = (await gateway.app.keys.create({ userId: 'backend', role: 'service', models: ['chat'] })).key;
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});
beforeEach(() => upstream.reset());

const client = (apiKey: string) => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey, maxRetries: 0, timeout: 10_000 });

function token(claims: JWTPayload): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(jwtSecret));
}

/** What the SDK raised for a request that should have been refused. */
async function refusalOf(request: Promise<unknown>): Promise<InstanceType<typeof OpenAI.PermissionDeniedError>> {
  const error: unknown = await request.then(() => undefined, (reason: unknown) => reason);
  if (!(error instanceof OpenAI.PermissionDeniedError)) throw new Error(`expected a PermissionDeniedError, got ${String(error)}`);
  return error;
}

const ask = (model: string) => ({ model, messages: [{ role: 'user' as const, content: 'hi' }] });

async function modelIds(apiKey: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const model of client(apiKey).models.list()) ids.push(model.id);
  return ids;
}

describe('a key limited to [chat], through the openai client', () => {
  it('calls chat, streamed and not', async () => {
    const completion = await client(chatOnlyKey).chat.completions.create(ask('chat'));
    expect(completion.choices[0]?.message.content).toBeTruthy();
    let text = '';
    for await (const chunk of await client(chatOnlyKey).chat.completions.create({ ...ask('chat'), stream: true })) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(completion.choices[0]?.message.content);
  });

  it('gets PermissionDeniedError model_not_allowed for another model, before any upstream call', async () => {
    const error = await refusalOf(client(chatOnlyKey).chat.completions.create({ ...ask('gpt-test'), stream: true }));
    expect(error.status).toBe(403);
    expect(error.code).toBe('model_not_allowed');
    expect(error.param).toBe('model');
    expect(error.type).toBe('permission_error');
    expect(error.message).toContain(`The API key ${chatOnlyKeyId} does not allow the model "gpt-test"`);
    expect(upstream.requests).toHaveLength(0);
  });

  it('gets the same 403 for a model that does not exist, so the list does not reveal which do', async () => {
    const error = await refusalOf(client(chatOnlyKey).chat.completions.create(ask('no-such-model')));
    expect(error.code).toBe('model_not_allowed');
  });

  it('leaves a refused usage row with the error code', async () => {
    await refusalOf(client(chatOnlyKey).chat.completions.create(ask('gpt-other')));
    await gateway.app.generations.flushUsage();
    const rows = await gateway.app.store.usage.recent({ userId: 'alice', limit: 50 });
    expect(rows.find((row) => row.model === 'gpt-other')).toMatchObject({ keyId: chatOnlyKeyId, outcome: 'refused', errorCode: 'model_not_allowed', totalTokens: 0, route: 'chat-completions' });
  });

  it('sees only chat in models.list(), while an unrestricted key sees every model', async () => {
    expect(await modelIds(chatOnlyKey)).toEqual(['chat']);
    expect(await modelIds(unrestrictedKey)).toEqual(expect.arrayContaining(['chat', 'gpt-test', 'gpt-other']));
    await expect(client(unrestrictedKey).chat.completions.create(ask('gpt-test'))).resolves.toBeTruthy();
  });
});

describe('a JWT with a models claim', () => {
  it('may use what its claim allows (array or space-separated string) and nothing else', async () => {
    const globbed = await token({ sub: 'carol', models: ['gpt-*'] });
    await expect(client(globbed).chat.completions.create(ask('gpt-test'))).resolves.toBeTruthy();
    const refused = await refusalOf(client(globbed).chat.completions.create(ask('chat')));
    expect(refused.code).toBe('model_not_allowed');
    expect(refused.message).toContain('The bearer token does not allow the model "chat"');
    expect(await modelIds(globbed)).toEqual(['gpt-test', 'gpt-other']);
    expect(await modelIds(await token({ sub: 'carol', models: 'chat gpt-other' }))).toEqual(['chat', 'gpt-other']);
  });

  it('without the claim, may use every model', async () => {
    await expect(client(await token({ sub: 'dave' })).chat.completions.create(ask('gpt-other'))).resolves.toBeTruthy();
  });
});

describe('every route refuses through the one check', () => {
  it('a service key acting for an end user keeps the service key\'s list', async () => {
    const error = await refusalOf(client(serviceKey).chat.completions.create({ ...ask('gpt-test'), user: 'end-user-1' }));
    expect(error.code).toBe('model_not_allowed');
    const headerError = await refusalOf(client(serviceKey).chat.completions.create(ask('gpt-test'), { headers: { 'X-Sluice-User': 'end-user-2' } }));
    expect(headerError.code).toBe('model_not_allowed');
    await expect(client(serviceKey).chat.completions.create({ ...ask('chat'), user: 'end-user-1' })).resolves.toBeTruthy();
  });

  it('the native API refuses a model outside the list, and its default model when that is outside', async () => {
    for (const body of [{ message: 'hi', model: 'gpt-test' }, { message: 'hi' }]) {
      const response = await fetch(`${gateway.url}/api/chat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${chatOnlyKey}`, 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      expect(response.status).toBe(403);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('model_not_allowed');
    }
    expect(upstream.requests).toHaveLength(0);
  });

  it('a WebSocket opened with a ticket from the key refuses the chat with an error frame', async () => {
    const issued = await fetch(`${gateway.url}/api/tickets`, { method: 'POST', headers: { authorization: `Bearer ${chatOnlyKey}` } });
    const { ticket } = (await issued.json()) as { ticket: string };
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/api/ws?ticket=${ticket}`);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('open', resolve);
        socket.once('error', reject);
      });
      const frame = new Promise<Record<string, unknown>>((resolve) => {
        socket.on('message', (data: Buffer) => {
          const parsed = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
          if (parsed['id'] === 'c1') resolve(parsed);
        });
      });
      socket.send(JSON.stringify({ type: 'chat', id: 'c1', message: 'hi', model: 'gpt-test' }));
      expect(await frame).toMatchObject({ type: 'error', id: 'c1', code: 'model_not_allowed' });
      expect(upstream.requests).toHaveLength(0);
    } finally {
      socket.terminate();
    }
  });
});

describe('POST /admin/keys models', () => {
  async function createKey(body: Record<string, unknown>): Promise<Response> {
    return fetch(`${gateway.url}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ userId: 'erin', role: 'user', ...body }) });
  }

  it('stores the list, GET /admin/keys shows it (null for every model), and the key is held to it', async () => {
    const created = await createKey({ models: ['gpt-*', 'upstream/*'] });
    expect(created.status).toBe(201);
    const body = (await created.json()) as { id: string; key: string; models: string[] };
    expect(body.models).toEqual(['gpt-*', 'upstream/*']);
    const listed = (await (await fetch(`${gateway.url}/admin/keys?userId=erin`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as { data: { id: string; models: string[] | null }[] };
    expect(listed.data.find((key) => key.id === body.id)?.models).toEqual(['gpt-*', 'upstream/*']);
    const everyModel = (await (await fetch(`${gateway.url}/admin/keys?userId=bob`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as { data: { models: string[] | null }[] };
    expect(everyModel.data[0]?.models).toBeNull();
    expect((await refusalOf(client(body.key).chat.completions.create(ask('chat')))).code).toBe('model_not_allowed');
  });

  it('refuses a bad list with 400 naming the field', async () => {
    const cases: [unknown, string, RegExp][] = [
      [[], 'models', /^models: must name at least one model pattern/],
      ['chat', 'models', /^models: must be a list of model patterns/],
      [Array.from({ length: 101 }, (_, index) => `m${index.toString()}`), 'models', /^models: must hold at most 100/],
      [['chat', 'gpt 4o'], 'models[1]', /^models\[1\]: must be 1 to 128 characters/],
      [['x'.repeat(129)], 'models[0]', /^models\[0\]: must be 1 to 128 characters/],
      [[''], 'models[0]', /^models\[0\]: /],
      [[7], 'models[0]', /^models\[0\]: must be a string/],
    ];
    for (const [models, param, message] of cases) {
      const response = await createKey({ models });
      const error = ((await response.json()) as { error: { code: string; param: string; message: string } }).error;
      expect({ models, status: response.status, code: error.code, param: error.param }).toEqual({ models, status: 400, code: 'invalid_request', param });
      expect(error.message).toMatch(message);
    }
  });
});
