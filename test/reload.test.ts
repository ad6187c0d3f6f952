// Reloading the config without a restart: POST /admin/reload and SIGHUP re-read the file; new
// requests run on the new providers, models and limits at once, a running stream finishes on what
// it started with, a config with problems is refused whole (the old one stays), and settings fixed
// at start are reported, not applied (docs/reload.md).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../src/config/load.js';
import { assertBuildIsCurrent, root } from './support/dist-freshness.js';
import { postChat, readStream } from './support/chat-client.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startMockOpenAi, type MockOpenAi } from './support/mock-openai.js';
import { unusedPort } from './support/tcp.js';
import { waitFor, within } from './support/wait.js';

const directory = mkdtempSync(join(tmpdir(), 'sluice-reload-'));
let upstreamA: MockOpenAi;
let upstreamB: MockOpenAi;

beforeAll(async () => {
  upstreamA = await startMockOpenAi({ apiKey: 'sk-upstream-a-0123456789' });
  upstreamB = await startMockOpenAi({ apiKey: 'sk-upstream-b-0123456789' });
});

afterAll(async () => {
  await upstreamA.close();
  await upstreamB.close();
  rmSync(directory, { recursive: true, force: true });
});

/** A config file whose alias `chat` goes to upstream `target`; `extra` lines are appended. */
function configText(target: 'a' | 'b', extra: string[] = []): string {
  return [
    'server: { host: 127.0.0.1, port: 0 }',
    'auth: { mode: keys }',
    'store: { url: "sqlite::memory:" }',
    'log: { level: info }',
    'providers:',
    `  a: { type: openai, baseUrl: "${upstreamA.baseUrl}", apiKey: ${upstreamA.apiKey} }`,
    `  b: { type: openai, baseUrl: "${upstreamB.baseUrl}", apiKey: ${upstreamB.apiKey} }`,
    'models:',
    `  chat: { provider: ${target}, model: gpt-4o-mini }`,
    ...extra,
  ].join('\n');
}

describe('POST /admin/reload', () => {
  let gateway: TestGateway;
  let adminKey: string;
  let userKey: string;
  const path = join(directory, 'admin-reload.yaml');

  beforeAll(async () => {
    writeFileSync(path, configText('a'));
    gateway = await startGateway(parse(configText('a')) as Record<string, unknown>, {}, { readConfig: () => loadConfig({ path }) });
    adminKey = (await gateway.app.keys.create({ userId: 'root', role: 'admin' })).key;
    userKey = (await gateway.app.keys.create({ userId: 'ursula', role: 'user' })).key;
  });

  afterAll(async () => {
    await gateway.close();
  });

  const reload = (key = adminKey) => fetch(`${gateway.url}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });
  const chat = (content = 'hi') => postChat(gateway.url, { model: 'chat', content, headers: { authorization: `Bearer ${userKey}` } });

  it('sends new requests to the new route at once while a running stream finishes on the old one', async () => {
    upstreamA.reset();
    upstreamB.reset();
    writeFileSync(path, configText('a'));
    expect((await reload()).status).toBe(200);
    upstreamA.plan = { chunkCount: 10, delayMs: 60 };
    const running = await chat('before the reload');
    expect(running.status).toBe(200);
    const runningAnswer = readStream(running);
    await waitFor(() => upstreamA.requests.length === 1, 'the first request to reach upstream a');

    writeFileSync(path, configText('b'));
    const answer = await reload();
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as { reloaded: boolean; changed: string[]; restartRequired: string[] };
    expect(body).toEqual({ reloaded: true, changed: ['models.chat.deployments', 'models.chat.provider'], restartRequired: [] });

    const after = await readStream(await chat('after the reload'));
    expect(after.done).toBe(true);
    expect(upstreamB.requests).toHaveLength(1);
    expect(upstreamB.requests[0]?.headers.authorization).toBe(`Bearer ${upstreamB.apiKey}`);

    // The stream that started on upstream a ends whole, on a.
    const before = await within(runningAnswer, 10_000, 'the running stream to end');
    expect(before.done).toBe(true);
    expect(before.content.length).toBeGreaterThan(0);
    expect(before.errorCode).toBeUndefined();
    expect(upstreamA.requests).toHaveLength(1);
    expect(gateway.logs.join('')).toContain('configuration reloaded');
  });

  it('refuses a config with problems whole, lists every problem, and keeps the running one', async () => {
    writeFileSync(path, configText('a'));
    expect((await reload()).status).toBe(200);
    upstreamA.reset();
    // Two problems: a typo in a provider's key and a model naming no provider.
    writeFileSync(path, configText('b', ['  other: { provider: nowhere, model: x }']).replace('apiKey: sk-upstream-b', 'apikey: sk-upstream-b'));
    const answer = await reload();
    expect(answer.status).toBe(400);
    const body = (await answer.json()) as { error: { code: string; message: string }; issues: { path: string; message: string }[] };
    expect(body.error.code).toBe('config_invalid');
    expect(body.issues.map((issue) => issue.path)).toEqual(expect.arrayContaining(['providers.b', 'models.other.provider']));
    expect(body.issues.find((issue) => issue.path === 'providers.b')?.message).toMatch(/did you mean\W+apiKey/);

    // Nothing of the refused file applies: `chat` still goes to a.
    await readStream(await chat());
    expect(upstreamA.requests).toHaveLength(1);
    expect(gateway.logs.join('')).toContain('configuration not reloaded');
  });

  it('applies new limits to the next request', async () => {
    writeFileSync(path, configText('a', ['limits: { perUser: { requestsPerMinute: 1 } }']));
    expect((await reload()).status).toBe(200);
    await readStream(await chat());
    const refused = await chat();
    expect(refused.status).toBe(429);
    await refused.text();
    writeFileSync(path, configText('a'));
    expect((await reload()).status).toBe(200);
    await readStream(await chat());
  });

  it('reports settings fixed at start as restartRequired and keeps their values', async () => {
    const drainBefore = gateway.app.config.server.drainTimeoutMs;
    writeFileSync(path, configText('a', ['hub: { retentionCount: 7 }']).replace('port: 0 }', 'port: 0, drainTimeoutMs: 1234 }'));
    const answer = await reload();
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as { changed: string[]; restartRequired: string[] };
    expect(body.restartRequired).toEqual(['hub.retentionCount', 'server.drainTimeoutMs']);
    expect(gateway.app.config.server.drainTimeoutMs).toBe(drainBefore);
    expect(gateway.app.config.hub.retentionCount).not.toBe(7);
    writeFileSync(path, configText('a'));
    expect((await reload()).status).toBe(200);
  });

  it('needs an admin credential', async () => {
    const answer = await reload(userKey);
    expect(answer.status).toBe(403);
    expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('forbidden');
  });
});

describe('a gateway started without a config file', () => {
  it('answers POST /admin/reload with reload_unavailable', async () => {
    const gateway = await startGateway({ auth: { mode: 'keys' } });
    try {
      const adminKey = (await gateway.app.keys.create({ userId: 'root', role: 'admin' })).key;
      const answer = await fetch(`${gateway.url}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}` } });
      expect(answer.status).toBe(409);
      expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('reload_unavailable');
    } finally {
      await gateway.close();
    }
  });
});

describe('SIGHUP on sluice serve', () => {
  const children = new Set<ChildProcess>();

  beforeAll(() => {
    assertBuildIsCurrent();
  });

  afterAll(() => {
    for (const child of children) child.kill('SIGKILL');
  });

  it('re-reads the file: a good one applies, a bad one is logged and refused', async () => {
    const port = await unusedPort();
    const path = join(directory, 'sighup.yaml');
    const text = (target: 'a' | 'b') => configText(target).replace('port: 0 }', `port: ${port.toString()} }`).replace('auth: { mode: keys }', 'auth: { mode: none }');
    writeFileSync(path, text('a'));
    const child = spawn(process.execPath, [join(root, 'dist/cli/main.js'), 'serve', '--config', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const url = `http://127.0.0.1:${port.toString()}`;
    await waitFor(() => output.includes('sluice listening'), `sluice serve to listen (output: ${output})`, 15_000);
    upstreamA.reset();
    upstreamB.reset();

    await readStream(await postChat(url, { model: 'chat', content: 'hi' }));
    expect(upstreamA.requests).toHaveLength(1);

    writeFileSync(path, text('b'));
    child.kill('SIGHUP');
    await waitFor(() => output.includes('configuration reloaded'), 'the reload to be logged', 5000);
    await readStream(await postChat(url, { model: 'chat', content: 'hi' }));
    expect(upstreamB.requests).toHaveLength(1);

    writeFileSync(path, text('a').replace('models:', 'models: [oops'));
    child.kill('SIGHUP');
    await waitFor(() => output.includes('configuration not reloaded'), 'the refusal to be logged', 5000);
    await readStream(await postChat(url, { model: 'chat', content: 'hi' }));
    expect(upstreamB.requests).toHaveLength(2);
    expect(child.exitCode).toBeNull();

    const exited = new Promise((resolve) => child.once('close', resolve));
    child.kill('SIGTERM');
    await within(exited, 10_000, 'sluice serve to exit');
    // Its last line, logged just before it left, was written though lines leave in batches (decision 0038).
    expect(output.trim().split('\n').at(-1)).toContain('"msg":"stopped"');
  }, 40_000);
});
