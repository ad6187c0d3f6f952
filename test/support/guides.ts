// What test/guides.test.ts needs to run the snippets of docs/guides/*.md as they are written: find
// the fenced block after a `<!-- test: name -->` marker, locate the tools (curl, python3 with
// requests, chromium, nginx, java), run a process with a deadline while timing its output, and serve a
// page to headless Chromium from the same origin as Sluice (Sluice sends no CORS headers).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export const guidesDirectory = new URL('../../docs/guides/', import.meta.url).pathname;
const nodeModules = new URL('../../node_modules/', import.meta.url).pathname;

/** A marked snippet: `<!-- test: name -->`, then (after blank lines at most) a fenced block. */
export interface Snippet {
  guide: string;
  name: string;
  language: string;
  code: string;
}

const markedBlock = /<!-- test: ([a-z0-9-]+) -->\s*\n```([a-z]*)\n([\s\S]*?)\n```/g;

/** Every marked snippet of every guide, in file order. */
export function allSnippets(): Snippet[] {
  const snippets: Snippet[] = [];
  for (const guide of readdirSync(guidesDirectory).filter((file) => file.endsWith('.md')).sort()) {
    const markdown = readFileSync(join(guidesDirectory, guide), 'utf8');
    // A marker whose next non-blank line is not a fence would be silently skipped by the pattern.
    const markers = markdown.match(/<!-- test: [a-z0-9-]+ -->/g) ?? [];
    const blocks = [...markdown.matchAll(markedBlock)];
    if (blocks.length !== markers.length) throw new Error(`${guide}: ${markers.length.toString()} test markers but ${blocks.length.toString()} of them are followed by a fenced block`);
    for (const [, name = '', language = '', code = ''] of blocks) snippets.push({ guide, name, language, code: `${code}\n` });
  }
  return snippets;
}

/** The snippet named `name`; throws, naming it, when no guide has it. */
export function snippet(name: string): Snippet {
  const found = allSnippets().filter((candidate) => candidate.name === name);
  if (found.length !== 1) throw new Error(`expected one snippet marked <!-- test: ${name} --> in docs/guides/, found ${found.length.toString()}`);
  return found[0]!;
}

/** A tool the guide tests need, and the Debian package that provides it. */
export interface Tool {
  /** The command to run, or undefined when it is missing. */
  command: string | undefined;
  debianPackage: string;
  missing: string;
}

function succeeds(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 });
  return result.status === 0;
}

function firstWorking(candidates: string[], args: string[]): string | undefined {
  return candidates.find((candidate) => (candidate.startsWith('/') ? existsSync(candidate) : true) && succeeds(candidate, args));
}

export function findTools(): { curl: Tool; python: Tool; chromium: Tool; nginx: Tool; java: Tool } {
  return {
    curl: { command: firstWorking(['curl'], ['--version']), debianPackage: 'curl', missing: 'curl is not installed' },
    // Prefer the system Python, where python3-requests installs; else whatever python3 is on PATH.
    python: { command: firstWorking(['/usr/bin/python3', 'python3'], ['-c', 'import requests']), debianPackage: 'python3-requests', missing: 'no python3 can import requests' },
    chromium: { command: firstWorking(['/usr/bin/chromium'], ['--version']), debianPackage: 'chromium', missing: '/usr/bin/chromium is not installed' },
    nginx: { command: firstWorking(['nginx', '/usr/sbin/nginx'], ['-v']), debianPackage: 'nginx', missing: 'nginx is not installed' },
    java: { command: findJdk(), debianPackage: 'default-jdk-headless', missing: 'no java with a compiler (JDK 11 or later) is on PATH' },
  };
}

/**
 * `java` when it can run a source file: `java File.java` needs JDK 11 or later (Java 8 has no
 * --list-modules) and the compiler module, which a JRE lacks.
 */
function findJdk(): string | undefined {
  const result = spawnSync('java', ['--list-modules'], { encoding: 'utf8', timeout: 10_000 });
  return result.status === 0 && /^jdk\.compiler@/m.test(result.stdout) ? 'java' : undefined;
}

/** Output of a finished process, with when each piece of stdout arrived (ms after spawn). */
export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
  stdoutArrivals: number[];
  exitedAtMs: number;
}

/** Runs a command to its end; kills it and rejects, with its output so far, after `timeoutMs`. */
export async function runProcess(command: string, args: string[], options: { env?: Record<string, string>; cwd?: string; timeoutMs: number }): Promise<ProcessResult> {
  const startedAt = performance.now();
  const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const stdoutArrivals: number[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    stdout.push(chunk);
    stdoutArrivals.push(performance.now() - startedAt);
  });
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${options.timeoutMs.toString()} ms; stdout: ${Buffer.concat(stdout).toString()}; stderr: ${Buffer.concat(stderr).toString()}`));
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8'), stdoutArrivals, exitedAtMs: performance.now() - startedAt });
    });
  });
}

/** Where a byte of `chunk` sits inside a multi-byte UTF-8 character: one past its first lead byte, or -1. */
export function cutInsideCharacter(chunk: Buffer): number {
  const lead = chunk.findIndex((byte) => byte >= 0xc0);
  return lead === -1 ? -1 : lead + 1;
}

/** What the page server's proxy did with one request to Sluice. */
export interface ProxiedRequest {
  method: string;
  path: string;
  lastEventId: string | undefined;
}

export interface PageServer {
  /** e.g. http://127.0.0.1:40123; `/` is a blank page with an import map for the vendored packages. */
  url: string;
  /** Serves `code` at `/snippets/<name>.js`. */
  addScript(name: string, code: string): void;
  /** Every /api and /v1 request passed on to Sluice, in order. */
  proxied: ProxiedRequest[];
  /** How many response chunks were written in two parts, cut inside a UTF-8 character. */
  splitCharacters: number;
  /** Set to N to cut the next /api/chat response just before its Nth `event: delta` (N − 1 arrive whole), as a dropped network would. */
  dropNextChatAfterDeltas: number | undefined;
  close(): Promise<void>;
}

// The vendored modules a page may import, by bare name. fetch-event-source's ESM build imports
// './parse' without an extension, which a browser cannot resolve, hence the `.js` fallback below.
const vendor: Record<string, string> = {
  'eventsource-parser': '/vendor/eventsource-parser/index.js',
  '@microsoft/fetch-event-source': '/vendor/fetch-event-source/index.js',
  vue: '/vendor/vue/vue.js',
};
/** Files whose vendored name differs from the file in the package. */
const vendorFiles: Record<string, string> = { 'vue/vue': 'vue.runtime.esm-browser.prod' };
const vendorDirectories: Record<string, string> = {
  'eventsource-parser': join(nodeModules, 'eventsource-parser/dist'),
  'fetch-event-source': join(nodeModules, '@microsoft/fetch-event-source/lib/esm'),
  vue: join(nodeModules, 'vue/dist'),
};

/**
 * A page server on 127.0.0.1 that passes /api/* and /v1/* on to `sluiceUrl`, as nginx would in
 * production. Every response chunk that holds a multi-byte character is written in two parts,
 * cut inside that character, 5 ms apart, so a client that decodes reads separately breaks.
 */
export async function startPageServer(sluiceUrl: string): Promise<PageServer> {
  const scripts = new Map<string, string>();
  const target = new URL(sluiceUrl);
  const state: PageServer = {
    url: '',
    addScript: (name, code) => scripts.set(name, code),
    proxied: [],
    splitCharacters: 0,
    dropNextChatAfterDeltas: undefined,
    close: async () => {},
  };

  function send(response: ServerResponse, status: number, type: string, body: string | Buffer): void {
    response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    response.end(body);
  }

  function proxy(request: IncomingMessage, response: ServerResponse): void {
    const path = request.url ?? '/';
    const lastEventId = request.headers['last-event-id'];
    state.proxied.push({ method: request.method ?? 'GET', path, lastEventId: typeof lastEventId === 'string' ? lastEventId : undefined });
    let dropAfterDeltas: number | undefined;
    if (path.startsWith('/api/chat') && state.dropNextChatAfterDeltas !== undefined) {
      dropAfterDeltas = state.dropNextChatAfterDeltas;
      state.dropNextChatAfterDeltas = undefined;
    }
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: request.method, path, headers: { ...request.headers, host: target.host } }, (upstreamResponse) => {
      response.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
      response.flushHeaders();
      let deltas = 0;
      // Writes are chained: 'end' can come while the second part of a cut chunk is still waiting.
      let written = Promise.resolve();
      const later = (write: () => void, delayMs: number) => new Promise<void>((resolve) => setTimeout(() => {
        write();
        resolve();
      }, delayMs));
      let dropped = false;
      upstreamResponse.on('data', (chunk: Buffer) => {
        if (dropped) return;
        const text = chunk.toString('latin1');
        const found = text.split('event: delta\n').length - 1;
        if (dropAfterDeltas !== undefined && deltas + found >= dropAfterDeltas) {
          // A dropped connection just before the dropAfterDeltas-th delta: the chunked body never
          // ends, so the client sees a network error. What came before that delta is written first,
          // and given time to arrive, even when Sluice sent it in the same chunk (a loaded machine
          // coalesces events): the client has an event id to resume from.
          dropped = true;
          let at = -1;
          for (let seen = deltas; seen < dropAfterDeltas; seen++) at = text.indexOf('event: delta\n', at + 1);
          const before = chunk.subarray(0, Math.max(at, 0)); // latin1: a character per byte; N ≤ 0 writes nothing
          written = written.then(() => {
            if (before.length > 0) response.write(before);
            return later(() => {
              upstream.destroy();
              response.socket?.destroy();
            }, 50);
          });
          return;
        }
        deltas += found;
        const cut = cutInsideCharacter(chunk);
        if (cut === -1) {
          written = written.then(() => void response.write(chunk));
          return;
        }
        state.splitCharacters++;
        written = written.then(() => {
          response.write(chunk.subarray(0, cut));
          return later(() => response.write(chunk.subarray(cut)), 5);
        });
      });
      upstreamResponse.on('end', () => void written.then(() => dropped || response.end()));
      upstreamResponse.on('error', () => response.destroy());
    });
    upstream.on('error', () => response.destroy());
    response.on('close', () => upstream.destroy());
    request.pipe(upstream);
  }

  const server: Server = createServer({ noDelay: true }, (request, response) => {
    const path = new URL(request.url ?? '/', 'http://page').pathname;
    if (path.startsWith('/api/') || path.startsWith('/v1/')) return proxy(request, response);
    if (path === '/') {
      return send(response, 200, 'text/html; charset=utf-8', `<!doctype html><meta charset="utf-8"><title>guide</title><script type="importmap">${JSON.stringify({ imports: vendor })}</script><body></body>`);
    }
    const script = /^\/snippets\/([a-z0-9-]+)\.js$/.exec(path);
    if (script && scripts.has(script[1] ?? '')) return send(response, 200, 'text/javascript; charset=utf-8', scripts.get(script[1] ?? '') ?? '');
    const vendored = /^\/vendor\/([a-z-]+)\/([a-z]+)(\.js)?$/.exec(path);
    const directory = vendorDirectories[vendored?.[1] ?? ''];
    if (vendored && directory) {
      const file = join(directory, `${vendorFiles[`${vendored[1] ?? ''}/${vendored[2] ?? ''}`] ?? vendored[2] ?? ''}.js`);
      if (existsSync(file)) return send(response, 200, 'text/javascript; charset=utf-8', readFileSync(file));
    }
    send(response, 404, 'text/plain', 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port.toString()}`;
  state.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return state;
}
