// The sluice command as a user runs it: help, check-config, and serve with a graceful SIGTERM.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const cli = join(root, 'dist/cli/main.js');
const directory = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
const children: ChildProcess[] = [];

beforeAll(async () => {
  // The CLI runs from the build; build it so the test never exercises stale output.
  await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')]);
}, 120_000);
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

async function sluice(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

function file(name: string, text: string): string {
  const path = join(directory, name);
  writeFileSync(path, text);
  return path;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('sluice --help and check-config', () => {
  it('--help lists the commands', async () => {
    const result = await sluice(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('sluice serve');
    expect(result.stdout).toContain('sluice check-config');
  });

  it('check-config reports every problem with its path and exits 1', async () => {
    const path = file(
      'bad.yaml',
      [
        'providers:',
        '  openai:',
        '    type: openai',
        '    baseUrl: not-a-url',
        '    apiKey: ${SLUICE_TEST_MISSING_KEY}',
        '    colour: blue',
        'models:',
        '  chat: { provider: nowhere }',
      ].join('\n'),
    );
    const result = await sluice(['check-config', path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('providers.openai.apiKey: environment variable SLUICE_TEST_MISSING_KEY is not set');
    expect(result.stderr).toContain('providers.openai.baseUrl');
    expect(result.stderr).toContain('providers.openai: unknown setting colour');
  });

  it('check-config names a model that points at a missing provider', async () => {
    const result = await sluice(['check-config', file('models.yaml', 'models:\n  chat: { provider: nowhere }\n')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('models.chat.provider: no provider "nowhere"');
  });

  it('check-config accepts a good file', async () => {
    const path = file('good.yaml', 'providers:\n  openai: { type: openai, baseUrl: "https://api.openai.com/v1", apiKey: "${SLUICE_TEST_KEY}" }\nmodels:\n  chat: { provider: openai, model: gpt-4o-mini }\n');
    const result = await sluice(['check-config', path], { SLUICE_TEST_KEY: 'sk-x' });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('OK');
  });
});

describe('sluice serve and SIGTERM', () => {
  async function start(drainTimeoutMs: number, delayMs: number): Promise<{ child: ChildProcess; url: string }> {
    const port = await freePort();
    const path = file(
      `serve-${port.toString()}.yaml`,
      `server: { port: ${port.toString()}, drainTimeoutMs: ${drainTimeoutMs.toString()} }\nlog: { level: warn }\nproviders:\n  demo: { type: mock, chunkCount: 20, delayMs: ${delayMs.toString()} }\nmodels:\n  demo: { provider: demo }\n`,
    );
    const child = spawn(process.execPath, [cli, 'serve', '--config', path], { stdio: 'ignore' });
    children.push(child);
    const url = `http://127.0.0.1:${port.toString()}`;
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        if ((await fetch(`${url}/healthz`)).ok) return { child, url };
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    throw new Error('sluice serve did not start');
  }

  const exited = (child: ChildProcess) => new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  /** Resolves once the stream has started; `body` resolves when it ends. */
  async function startStream(url: string): Promise<{ body: Promise<string> }> {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    return { body: response.text() };
  }

  it('lets a running stream finish, refuses new connections, exits 0', async () => {
    const { child, url } = await start(10_000, 50); // about 1 s per answer
    const { body } = await startStream(url);
    const exit = exited(child);
    const signalledAt = performance.now();
    child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    expect(await body).toContain('data: [DONE]');
    // The answer needed most of its second after the signal: the drain really waited for it.
    expect(performance.now() - signalledAt).toBeGreaterThan(500);
    expect(await exit).toBe(0);
  });

  it('ends streams still running after the drain timeout with shutting_down, exits 0', async () => {
    const { child, url } = await start(200, 500); // about 10 s per answer
    const { body } = await startStream(url);
    const exit = exited(child);
    const signalledAt = performance.now();
    child.kill('SIGTERM');
    const text = await body;
    expect(performance.now() - signalledAt).toBeLessThan(2000);
    expect(text).toContain('"code":"shutting_down"');
    expect(text).not.toContain('[DONE]');
    expect(await exit).toBe(0);
  });
});
