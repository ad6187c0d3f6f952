// The process's log lines on standard output (decision 0038): gathered into batches rather than a
// write each, yet none lost when the process exits or crashes, and none left waiting in a quiet
// process for longer than a moment. Runs the built logger (`dist/`) in a child process, as
// `sluice serve` runs it, with stdout a pipe.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuildIsCurrent, root } from './support/dist-freshness.js';

const logger = join(root, 'dist/observability/logger.js');

interface Child {
  /** Resolves with what the child wrote to stdout by the time it exited, and its exit code. */
  readonly exited: Promise<{ stdout: string; code: number | null }>;
  /** Resolves once stdout holds `text`. */
  until(text: string): Promise<void>;
  kill(): void;
}

/** Runs `body` as an ES module with `createLogger` imported from dist/. */
function run(body: string): Child {
  const source = `import { createLogger } from ${JSON.stringify(logger)};\n${body}`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  const waiting: { text: string; resolve: () => void }[] = [];
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (part: string) => {
    stdout += part;
    for (const wait of waiting.filter((entry) => stdout.includes(entry.text))) wait.resolve();
  });
  const exited = new Promise<{ stdout: string; code: number | null }>((resolve) => child.on('close', (code) => resolve({ stdout, code })));
  return {
    exited,
    until: (text) => (stdout.includes(text) ? Promise.resolve() : new Promise((resolve) => waiting.push({ text, resolve }))),
    kill: () => child.kill('SIGKILL'),
  };
}

const messages = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { msg: string }).msg);

describe('log lines on standard output', () => {
  beforeAll(() => assertBuildIsCurrent());

  it('writes every gathered line when the process exits at once', async () => {
    const child = run("const log = createLogger('info'); for (let i = 0; i < 5; i++) log.info('line ' + i); process.exit(3);");
    const { stdout, code } = await child.exited;
    expect(code).toBe(3);
    expect(messages(stdout)).toStrictEqual(['line 0', 'line 1', 'line 2', 'line 3', 'line 4']);
  });

  it('writes the lines logged before a crash', async () => {
    const child = run("const log = createLogger('info'); log.error('about to fail'); setImmediate(() => { throw new Error('boom'); });");
    const { stdout, code } = await child.exited;
    expect(code).not.toBe(0);
    expect(messages(stdout)).toStrictEqual(['about to fail']);
  });

  it('writes a lone line of a process that goes on running within a moment', async () => {
    // Far below the batch size: only the periodic flush writes it while the process lives.
    // Alive for 10 s at most, whatever happens to the test: a pending timer, no interval.
    const child = run("const log = createLogger('info'); log.info('still here'); setTimeout(() => undefined, 10_000);");
    try {
      const started = performance.now();
      await child.until('still here');
      expect(performance.now() - started).toBeLessThan(5000);
    } finally {
      child.kill();
    }
  });

  it('shares one destination among the loggers of a process, so their lines keep their order', async () => {
    const child = run("const a = createLogger('info'); const b = createLogger('info'); for (let i = 0; i < 4; i++) (i % 2 ? b : a).info('line ' + i); process.exit(0);");
    const { stdout } = await child.exited;
    expect(messages(stdout)).toStrictEqual(['line 0', 'line 1', 'line 2', 'line 3']);
  });
});
