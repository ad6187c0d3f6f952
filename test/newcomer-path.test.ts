// The newcomer path: what the README's first screen says happens, happens. `npm start` on a fresh
// clone prints the `export SLUICE_KEY=…` line the README shows and creates ./data/sluice.db; the
// curl and `openai` examples work with that key as written; the Node version and the commands are
// the ones that apply to a clone; and a fresh install is quiet (no tracked file ignored, no install
// script left undecided, which npm 11 warns about).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoAnswer } from '../src/providers/mock/answer.js';
import { assertBuildIsCurrent, root } from './support/dist-freshness.js';
import { findTools, runProcess } from './support/guides.js';

const readme = readFileSync(join(root, 'README.md'), 'utf8');
const packageJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  engines: { node: string };
  scripts: Record<string, string>;
  bin: Record<string, string>;
  allowScripts?: Record<string, boolean>;
};

/** The fenced blocks of the README, with their language. */
const blocks = [...readme.matchAll(/```([a-z]*)\n([\s\S]*?)\n```/g)].map(([, language = '', code = '']) => ({ language, code }));

describe('the README', () => {
  it('states the Node version package.json requires', () => {
    const minimum = /^>=(\d+\.\d+\.\d+)$/.exec(packageJson.engines.node)?.[1];
    expect(minimum).toBeDefined();
    expect(readme).toContain(`Node.js ≥ ${minimum ?? ''}`);
    // And no other, older or newer, version claim.
    expect([...readme.matchAll(/Node(?:\.js)? ≥ ([\d.]+)/g)].map((match) => match[1])).toEqual([minimum]);
  });

  it('shows the CLI as it runs from a clone: npx sluice …', () => {
    // Code blocks and inline code; "sluice serve" etc. without npx only works once installed globally.
    const code = [...blocks.map((block) => block.code), ...[...readme.matchAll(/`([^`\n]+)`/g)].map((match) => match[1] ?? '')].join('\n');
    expect(code.match(/(?<!npx )\bsluice (?:serve|chat|keys|usage|check-config)\b[^\n]*/g) ?? []).toEqual([]);
    expect(code).toMatch(/npx sluice /);
    expect(Object.keys(packageJson.bin)).toEqual(['sluice']);
  });

  it('presents the openai example as an ES module file, chat.mjs', () => {
    const example = blocks.find((block) => block.code.includes("from 'openai'"));
    expect(example?.language).toBe('js');
    expect(example?.code.split('\n')[0]).toBe('// chat.mjs');
    expect(readme).toContain('`node chat.mjs`');
  });
});

describe('npm start on a fresh clone, then the README examples', () => {
  const directory = mkdtempSync(join(tmpdir(), 'sluice-newcomer-'));
  // Inside the repository, so the example's `import 'openai'` resolves as in a project that installed it.
  mkdirSync(join(root, 'node_modules/.cache'), { recursive: true });
  const examples = mkdtempSync(join(root, 'node_modules/.cache/sluice-newcomer-'));
  let child: ChildProcess | undefined;
  let url = '';
  let stderr = '';

  beforeAll(async () => {
    assertBuildIsCurrent();
    expect(packageJson.scripts['start']).toBe('node dist/cli/main.js serve');
    // As `npm start` runs it, with no config and none of Sluice's variables; only the port is
    // free instead of 8080, which may be taken on a shared machine.
    const environment = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SLUICE_')));
    child = spawn(process.execPath, [join(root, 'dist/cli/main.js'), 'serve'], { cwd: directory, env: { ...environment, SLUICE_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const deadline = performance.now() + 15_000;
    while (url === '') {
      if (child.exitCode !== null) throw new Error(`sluice serve exited with ${String(child.exitCode)}: ${stderr}`);
      if (performance.now() > deadline) throw new Error(`sluice serve did not start: ${stderr}`);
      url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(stdout)?.[1] ?? '';
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  });
  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(directory, { recursive: true, force: true });
    rmSync(examples, { recursive: true, force: true });
  });

  /** The key from the first start's `export SLUICE_KEY=…` line, in the form the README shows. */
  function printedKey(): string {
    const shown = blocks.find((block) => block.code.includes('export SLUICE_KEY='))?.code;
    expect(shown).toBe('  export SLUICE_KEY=sk-sluice-…');
    const line = new RegExp(`^${(shown ?? '').replace('sk-sluice-…', '(sk-sluice-[a-z0-9]{12}-[A-Za-z0-9_-]{43})')}$`, 'm');
    const key = line.exec(stderr)?.[1];
    expect(key, stderr).toBeDefined();
    return key ?? '';
  }

  it('prints the export SLUICE_KEY=… line the README shows, and creates ./data/sluice.db', () => {
    printedKey();
    expect(existsSync(join(directory, 'data/sluice.db'))).toBe(true);
  });

  it("the README's curl command streams the answer with that key", async (context) => {
    const curl = findTools().curl;
    if (!curl.command) context.skip(curl.missing);
    const command = blocks.find((block) => block.language === 'sh' && block.code.startsWith('curl -N'))?.code ?? '';
    expect(command).toContain('http://127.0.0.1:8080/');
    const result = await runProcess('bash', ['-c', command.replaceAll('http://127.0.0.1:8080', url)], { env: { SLUICE_KEY: printedKey() }, timeoutMs: 20_000 });
    expect(result.code, result.stderr).toBe(0);
    const payloads = result.stdout.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice('data: '.length));
    expect(payloads.at(-1)).toBe('[DONE]');
    const text = payloads.slice(0, -1).map((payload) => (JSON.parse(payload) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(demoAnswer('你好'));
  });

  it("the README's chat.mjs streams the answer and prints usage with that key", async () => {
    const example = blocks.find((block) => block.code.includes("from 'openai'"))?.code ?? '';
    expect(example).toContain("'http://127.0.0.1:8080/v1'");
    const file = join(examples, 'chat.mjs');
    writeFileSync(file, example.replaceAll('http://127.0.0.1:8080', url));
    const result = await runProcess(process.execPath, [file], { env: { SLUICE_KEY: printedKey() }, timeoutMs: 20_000 });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.startsWith(`${demoAnswer('Hello!')}\n`), result.stdout).toBe(true);
    expect(result.stdout).toMatch(/total_tokens: \d+/);
  });
});

describe('a fresh install', () => {
  const git = (args: string[]) => spawnSync('git', args, { cwd: root, encoding: 'utf8' });
  const inGit = git(['rev-parse', '--is-inside-work-tree']).stdout.trim() === 'true';

  it('.gitignore lists no tracked file, and ignores node_modules even where it is a symlink (a git worktree)', (context) => {
    if (!inGit) context.skip('not a git checkout (git rev-parse --is-inside-work-tree failed)');
    expect(git(['ls-files', '-i', '-c', '--exclude-standard']).stdout).toBe('');
    expect(readFileSync(join(root, '.gitignore'), 'utf8').split('\n')).toContain('node_modules');
    for (const path of ['node_modules', 'dist/', 'data/']) expect(git(['check-ignore', '--no-index', '-q', path]).status, path).toBe(0);
  });

  it('allowScripts decides on every dependency with an install script, so npm has nothing to warn about', () => {
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };
    const withScripts = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== '' && entry.hasInstallScript === true)
      .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
    expect(withScripts.length).toBeGreaterThan(0);
    const decided = Object.keys(packageJson.allowScripts ?? {});
    expect(withScripts.filter((name) => !decided.includes(name))).toEqual([]);
    // better-sqlite3 cannot work without its script (it provides the native addon).
    expect(packageJson.allowScripts?.['better-sqlite3']).toBe(true);
  });
});
