// The `sluice` command as an operator runs it, from the build: --help, check-config (every problem
// with its path, exit 1; a good file, exit 0), and serve with a graceful SIGTERM (running streams
// finish, new connections are refused, exit 0; streams still running at drainTimeoutMs end with
// an in-band shutting_down error).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoAnswer } from '../src/providers/mock/answer.js';
import { assertBuildIsCurrent } from './support/dist-freshness.js';
import { postChat, readStream, type ParsedStream } from './support/chat-client.js';
import { unusedPort } from './support/tcp.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { waitFor, within } from './support/wait.js';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const cli = join(root, 'dist/cli/main.js');
const directory = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
const children = new Set<ChildProcess>();

beforeAll(() => {
  // The CLI runs from the build, which npm test makes before vitest starts.
  assertBuildIsCurrent();
});
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(directory, { recursive: true, force: true });
});

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function sluice(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, timeout: 15_000 });
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

describe('sluice --help', () => {
  it('exits 0 and lists the commands', async () => {
    const result = await sluice(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ {2}sluice serve\b/m);
    expect(result.stdout).toMatch(/^ {2}sluice check-config\b/m);
  });
});

describe('sluice check-config', () => {
  it('reports every problem of a file at once, each with its path, and exits 1', async () => {
    const path = file(
      'bad.yaml',
      [
        'server:',
        '  port: 8080',
        '  colour: blue',
        'providers:',
        '  openai:',
        '    type: openai',
        '    baseUrl: not-a-url',
        '    apiKey: ${SLUICE_TEST_MISSING_KEY}',
        'models:',
        '  chat: { provider: nowhere, model: gpt-4o }',
      ].join('\n'),
    );
    const result = await sluice(['check-config', path]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`${path}: 4 problems`);
    expect(result.stderr).toMatch(/^ {2}- providers\.openai\.baseUrl: must be an http\(s\) URL/m);
    expect(result.stderr).toMatch(/^ {2}- server: unknown setting colour\b/m);
    expect(result.stderr).toMatch(/^ {2}- models\.chat\.provider: no provider "nowhere"/m);
    expect(result.stderr).toMatch(/^ {2}- providers\.openai\.apiKey: environment variable SLUICE_TEST_MISSING_KEY is not set/m);
  });

  it('explains each problem in one line: YAML position, the key meant, where a key belongs, references, in our words', async () => {
    const syntax = await sluice(['check-config', file('syntax.yaml', 'server:\n  port: 8080\n  host: "127.0.0.1\nlog: { level: info }\n')]);
    expect(syntax.code).toBe(1);
    expect(syntax.stderr).toMatch(/: 1 problem\n {2}- line \d+, column \d+: Missing closing "quote; fix the YAML syntax\n$/);

    const path = file(
      'explained.yaml',
      [
        'server:',
        '  port: 0',
        '  heartbeatMs: 0',
        '  redisUrl: redis://127.0.0.1:6379',
        'limits:',
        '  requestsPerMinute: 60',
        'providers:',
        '  openai: { type: openai, baseUrl: "https://api.openai.com/v1", apikey: sk-x }',
        'models:',
        '  chat: { provider: openai, fallbacks: [backup] }',
        'defaultModel: caht',
      ].join('\n'),
    );
    const result = await sluice(['check-config', path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      [
        `${path}: 6 problems`,
        '  - server.heartbeatMs: must be a whole number above 0',
        '  - server: unknown setting redisUrl; it belongs under cluster.redisUrl',
        '  - providers.openai: unknown setting apikey; did you mean apiKey?',
        '  - limits: unknown setting requestsPerMinute; it belongs under limits.perUser.requestsPerMinute (or limits.users.<id>.requestsPerMinute, or providers.<id>.limits.requestsPerMinute)',
        '  - models.chat.fallbacks.0: "backup" is neither a model alias nor provider/model with a configured provider',
        '  - defaultModel: "caht" is neither a model alias nor provider/model with a configured provider; did you mean chat?',
        '',
      ].join('\n'),
    );
  });

  it('prints OK for a valid file and exits 0', async () => {
    const path = file(
      'good.yaml',
      'providers:\n  openai: { type: openai, baseUrl: "https://api.openai.com/v1", apiKey: "${SLUICE_TEST_KEY}" }\nmodels:\n  chat: { provider: openai, model: gpt-4o-mini, fallbacks: ["openai/gpt-4o"] }\n',
    );
    const result = await sluice(['check-config', path], { SLUICE_TEST_KEY: 'sk-x' });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${path}: OK (1 provider, 1 model alias)\n`);
  });
});

describe('sluice keys and sluice usage', () => {
  const storeConfig = () => file('store.yaml', `store: { url: "sqlite:${join(directory, 'keys.db')}" }\n`);

  it('create prints the key once; list shows it without the secret; revoke marks it revoked', async () => {
    const config = storeConfig();
    const created = await sluice(['keys', 'create', '--config', config, '--user', 'alice', '--role', 'user', '--rpm', '60', '--daily-tokens', '100000', '--name', 'alice laptop', '--expires', '30d']);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const key = /^(sk-sluice-([a-z0-9]{12})-[A-Za-z0-9_-]{43})$/m.exec(created.stdout);
    expect(key).not.toBeNull();
    const [, secretKey = '', id = ''] = key ?? [];

    const listed = await sluice(['keys', 'list', '--config', config]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${id} +alice +user +active +\\d{4}-\\d{2}-\\d{2} +requestsPerMinute=60 dailyTokens=100000 +alice laptop$`, 'm'));
    expect(listed.stdout).not.toContain(secretKey.slice(-43));

    const revoked = await sluice(['keys', 'revoke', id, '--config', config]);
    expect(revoked).toMatchObject({ code: 0, stdout: `revoked key ${id} (user alice)\n` });
    const json = JSON.parse((await sluice(['keys', 'list', '--json', '--config', config])).stdout) as { id: string; revokedAt: string | null }[];
    expect(json.find((entry) => entry.id === id)?.revokedAt).not.toBeNull();
  });

  it('create --models limits the key to those patterns; create --json and list show them', async () => {
    const config = storeConfig();
    const created = await sluice(['keys', 'create', '--config', config, '--user', 'gina', '--role', 'user', '--models', 'chat, spark-*', '--json']);
    expect(created.stderr).toBe('');
    const { id, models } = JSON.parse(created.stdout) as { id: string; models: string[] };
    expect(models).toEqual(['chat', 'spark-*']);
    const unrestricted = JSON.parse((await sluice(['keys', 'create', '--config', config, '--user', 'gina', '--role', 'user', '--json'])).stdout) as { id: string; models: string[] | null };
    expect(unrestricted.models).toBeNull();

    const listed = await sluice(['keys', 'list', '--user', 'gina', '--config', config]);
    expect(listed.stdout).toMatch(/^id +user +role +state +created +limits +models +name$/m);
    expect(listed.stdout).toMatch(new RegExp(`^${id} +gina +user +active +\\d{4}-\\d{2}-\\d{2} +- +chat,spark-\\*$`, 'm'));
    expect(listed.stdout).toMatch(new RegExp(`^${unrestricted.id} +gina +user +active +\\d{4}-\\d{2}-\\d{2} +-$`, 'm'));
    // Three CLI starts: on a loaded two-core machine each can take several seconds.
  }, 60_000);

  it('create --models refuses an empty list or a bad pattern, exit 2', async () => {
    for (const [models, problem] of [
      ['', '--models must be 1 to 128 characters'],
      ['chat,gpt 4o', '--models must be 1 to 128 characters of A-Z, a-z, 0-9 and . _ : / * @ -, got "chat,gpt 4o"'],
    ] as const) {
      const result = await sluice(['keys', 'create', '--config', storeConfig(), '--user', 'gina', '--role', 'user', '--models', models]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(problem);
    }
  }, 60_000);

  it('bad arguments exit 2 and name every problem', async () => {
    const result = await sluice(['keys', 'create', '--config', storeConfig(), '--role', 'root', '--rpm', 'lots']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--user is required');
    expect(result.stderr).toContain('--role must be user, service or admin');
    expect(result.stderr).toContain('--rpm must be a positive whole number, got "lots"');
    const unknown = await sluice(['keys', 'create', '--config', storeConfig(), '--colour', 'red']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--colour');
  });

  it('usage prints an empty report for an empty range and rejects bad dates', async () => {
    const report = await sluice(['usage', '--config', storeConfig(), '--from', '2020-01-01', '--to', '2020-01-31']);
    expect(report).toMatchObject({ code: 0, stdout: 'usage 2020-01-01 to 2020-01-31\nno usage in this range\n' });
    const bad = await sluice(['usage', '--config', storeConfig(), '--from', 'last-week']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--from must be a date');
  });
});

describe('sluice chat', () => {
  let gateway: TestGateway;
  let key: string;
  beforeAll(async () => {
    gateway = await startGateway({ auth: { mode: 'keys' }, providers: { demo: { type: 'mock', chunkCount: 20, delayMs: 15 } }, models: { demo: { provider: 'demo', model: 'sluice-demo' } }, defaultModel: 'demo' });
    key = (await gateway.app.keys.create({ userId: 'cli-user', role: 'user' })).key;
  });
  afterAll(async () => {
    await gateway?.close();
  });

  it('streams the answer to a pipe as plain text, nothing on stderr', async () => {
    const result = await sluice(['chat', 'What is SSE?', '--url', gateway.url, '--key', key]);
    expect(result).toEqual({ code: 0, stdout: `${demoAnswer('What is SSE?')}\n`, stderr: '' });
  });

  it('takes the question from stdin and the key from SLUICE_KEY', async () => {
    const child = spawn(process.execPath, [cli, 'chat', '--url', gateway.url], { env: { ...process.env, SLUICE_KEY: key }, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stdin.end('从标准输入来的问题\n');
    const code = await within(new Promise<number | null>((resolve) => child.once('exit', resolve)), 10_000, 'sluice chat to exit');
    expect(code).toBe(0);
    expect(stdout).toBe(`${demoAnswer('从标准输入来的问题')}\n`);
  });

  it('--json prints one event per line, meta first and done last', async () => {
    const result = await sluice(['chat', 'hi', '--json', '--url', gateway.url, '--key', key]);
    expect(result.code).toBe(0);
    const events = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { type: string; text?: string });
    expect(events[0]?.type).toBe('meta');
    expect(events.at(-1)?.type).toBe('done');
    expect(events.filter((event) => event.type === 'delta').map((event) => event.text).join('')).toBe(demoAnswer('hi'));
  });

  it('stops quietly when the reader of its stdout goes away (| head -3): exit 0, no stack trace, the generation cancelled', async () => {
    // A long answer (about 6 s): the pipe closes after three lines, long before it ends.
    const slow = await startGateway({ auth: { mode: 'keys' }, providers: { demo: { type: 'mock', chunkCount: 200, delayMs: 30 } }, models: { demo: { provider: 'demo', model: 'sluice-demo' } }, defaultModel: 'demo' });
    try {
      const slowKey = (await slow.app.keys.create({ userId: 'head-reader', role: 'user' })).key;
      const child = spawn(process.execPath, [cli, 'chat', 'hi', '--json', '--url', slow.url, '--key', slowKey], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child);
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
      // What `head -3` does: read three lines, then close its end of the pipe.
      let lines = 0;
      let buffered = '';
      await within(
        new Promise<void>((resolve) => {
          child.stdout.on('data', (chunk: Buffer) => {
            buffered += chunk.toString('utf8');
            lines = buffered.split('\n').length - 1;
            if (lines >= 3) {
              child.stdout.destroy();
              resolve();
            }
          });
        }),
        10_000,
        'three lines from sluice chat',
      );
      const closedAt = performance.now();
      const { code, signal } = await within(exited, 5_000, 'sluice chat to exit after its reader left');
      expect(performance.now() - closedAt).toBeLessThan(3_000);
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      expect(stderr).toBe('');
      // Nobody reads the answer any more, so it is not left running (and billed) to the end.
      await waitFor(() => slow.app.generations.active.size === 0, 'the generation to stop', 3_000);
      await slow.app.generations.flushUsage();
      const [usage] = await slow.app.store.usage.aggregate({ from: 0, to: Number.MAX_SAFE_INTEGER, userId: 'head-reader', groupBy: [] });
      expect(usage).toMatchObject({ requests: 1, cancelled: 1 });
    } finally {
      await slow.close();
    }
  });

  it('on a pseudo-terminal shows a spinner until the first token, then erases it', async () => {
    // script(1) gives the command a real pty, as a person's terminal would.
    const command = [process.execPath, cli, 'chat', 'hello tty', '--url', gateway.url, '--key', key].map((part) => `'${part}'`).join(' ');
    const { stdout } = await run('script', ['-qfec', command, '/dev/null'], { timeout: 15_000 });
    expect(stdout).toContain('waiting for the first token');
    expect(stdout).toContain('\x1b[2K');
    expect(stdout.replace(/\r\n/g, '\n')).toContain(demoAnswer('hello tty'));
    expect(stdout).toMatch(/tokens \(\d+ in, \d+ out\)/);
  });

  it('exits 1 with the error code and message: a bad key, a gateway that is not there, no question', async () => {
    const badKey = await sluice(['chat', 'hi', '--url', gateway.url, '--key', 'sk-sluice-aaaaaaaaaaaa-nope']);
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toMatch(/^sluice chat: 401 invalid_api_key: /);
    const nowhere = await sluice(['chat', 'hi', '--url', `http://127.0.0.1:${(await unusedPort()).toString()}`, '--key', key]);
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toContain('cannot connect to');
    const unknownModel = await sluice(['chat', 'hi', '--model', 'nope', '--url', gateway.url, '--key', key]);
    expect(unknownModel.code).toBe(1);
    expect(unknownModel.stderr).toContain('model_not_found');
  });
});

describe('sluice serve and SIGTERM', () => {
  interface Served {
    child: ChildProcess;
    url: string;
    exited: Promise<number | null>;
    stderr: () => string;
  }

  /** Starts `sluice serve` on a free port with the demo model answering in 20 deltas `delayMs` apart. */
  async function serve(drainTimeoutMs: number, delayMs: number, identity = ['auth: { mode: none }', 'store: { url: "sqlite::memory:" }'], env: Record<string, string> = {}): Promise<Served> {
    const port = await unusedPort();
    const path = file(
      `serve-${port.toString()}.yaml`,
      [
        `server: { host: 127.0.0.1, port: ${port.toString()}, drainTimeoutMs: ${drainTimeoutMs.toString()} }`,
        'log: { level: warn }',
        ...identity,
        'providers:',
        `  demo: { type: mock, chunkCount: 20, delayMs: ${delayMs.toString()} }`,
        'models:',
        '  demo: { provider: demo }',
      ].join('\n'),
    );
    const child = spawn(process.execPath, [cli, 'serve', '--config', path], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    children.add(child);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const url = `http://127.0.0.1:${port.toString()}`;
    const deadline = performance.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`sluice serve exited with ${String(child.exitCode)}: ${stderr}`);
      try {
        if ((await fetch(`${url}/healthz`)).ok) return { child, url, exited, stderr: () => stderr };
      } catch {
        // Not listening yet.
      }
      if (performance.now() > deadline) throw new Error(`sluice serve did not start: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Resolves once the stream's head arrived (the first delta exists); `answer` settles when it ends. */
  async function startStream(url: string): Promise<{ answer: Promise<ParsedStream> }> {
    const response = await postChat(url, { model: 'demo', content: 'hi' });
    expect(response.status).toBe(200);
    return { answer: readStream(response) };
  }

  it('on the first start with an empty store, creates an admin key and prints it once', async () => {
    const identity = ['auth: { mode: keys }', `store: { url: "sqlite:${join(directory, 'first-start.db')}" }`];
    const first = await serve(100, 0, identity);
    // The README's first screen promises this exact line.
    const printed = /^ {2}export SLUICE_KEY=(sk-sluice-[a-z0-9]{12}-[A-Za-z0-9_-]{43})$/m.exec(first.stderr());
    expect(printed).not.toBeNull();
    const adminKey = printed?.[1] ?? '';
    const keys = await fetch(`${first.url}/admin/keys`, { headers: { authorization: `Bearer ${adminKey}` } });
    expect(keys.status).toBe(200);
    expect((await fetch(`${first.url}/admin/keys`)).status).toBe(401);
    first.child.kill('SIGTERM');
    expect(await within(first.exited, 5000, 'sluice to exit')).toBe(0);

    const second = await serve(100, 0, identity);
    expect(second.stderr()).not.toContain('sk-sluice-');
    expect((await fetch(`${second.url}/admin/keys`, { headers: { authorization: `Bearer ${adminKey}` } })).status).toBe(200);
    second.child.kill('SIGTERM');
    expect(await within(second.exited, 5000, 'sluice to exit')).toBe(0);
  });

  it('SLUICE_ADMIN_KEY installs the operator\'s own admin key instead, and prints no secret', async () => {
    const chosen = `sk-sluice-opsadmin0001-${'A'.repeat(43)}`;
    const served = await serve(100, 0, ['auth: { mode: keys }', `store: { url: "sqlite:${join(directory, 'preset.db')}" }`], { SLUICE_ADMIN_KEY: chosen });
    expect(served.stderr()).not.toContain(chosen);
    expect((await fetch(`${served.url}/admin/keys`, { headers: { authorization: `Bearer ${chosen}` } })).status).toBe(200);
    served.child.kill('SIGTERM');
    expect(await within(served.exited, 5000, 'sluice to exit')).toBe(0);
  });

  it('on a port already in use ends with one line naming the port and how to change it, and exits 1', async () => {
    const occupier = createNetServer();
    await new Promise<void>((resolve) => occupier.listen(0, '127.0.0.1', resolve));
    const port = (occupier.address() as AddressInfo).port;
    try {
      const path = file('port-in-use.yaml', [`server: { host: 127.0.0.1, port: ${port.toString()} }`, 'log: { level: warn }', 'auth: { mode: none }', 'store: { url: "sqlite::memory:" }'].join('\n'));
      const result = await sluice(['serve', '--config', path]);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`sluice: port ${port.toString()} is in use; set server.port in the config or SLUICE_PORT\n`);
    } finally {
      await new Promise((resolve) => occupier.close(resolve));
    }
  });

  it('lets a running stream finish, refuses new connections, and exits 0', async () => {
    const served = await serve(10_000, 50); // about 1 s per answer
    const { answer } = await startStream(served.url);
    const signalledAt = performance.now();
    served.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expect(fetch(`${served.url}/healthz`)).rejects.toThrow();

    const finished = await within(answer, 5000, 'the running stream to finish');
    const finishedAt = performance.now();
    expect(finished.content).toBe(demoAnswer('hi'));
    expect(finished.done).toBe(true);
    expect(finished.errorCode).toBeUndefined();
    // The answer needed most of its second after the signal: the drain really waited for it.
    expect(finishedAt - signalledAt).toBeGreaterThan(500);
    expect(await within(served.exited, 5000, 'sluice to exit')).toBe(0);
    expect(performance.now() - finishedAt).toBeLessThan(2000);
    expect(served.stderr()).toBe('');
  });

  it('ends a stream still running at drainTimeoutMs with an in-band shutting_down error, and exits 0', async () => {
    const served = await serve(200, 500); // about 10 s per answer
    const { answer } = await startStream(served.url);
    const signalledAt = performance.now();
    served.child.kill('SIGTERM');

    const ended = await within(answer, 5000, 'the stream to end');
    expect(performance.now() - signalledAt).toBeGreaterThanOrEqual(200);
    expect(performance.now() - signalledAt).toBeLessThan(2000);
    expect(ended.content.length).toBeGreaterThan(0);
    expect(demoAnswer('hi').startsWith(ended.content)).toBe(true);
    expect(ended.errorCode).toBe('shutting_down');
    expect(ended.payloads.at(-1)).toContain('"shutting_down"');
    expect(ended.done).toBe(false);
    expect(await within(served.exited, 5000, 'sluice to exit')).toBe(0);
  });
});
