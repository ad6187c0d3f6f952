// The integration guides cannot rot: every snippet marked `<!-- test: … -->` in docs/guides/ is
// taken from the markdown as written and run against a real Sluice — curl and the `openai` package
// as processes, Python `requests` through a proxy that cuts UTF-8 characters apart, the browser
// snippets in headless Chromium (with a dropped connection and a hidden tab), and the nginx config
// in a real nginx that must pass the first delta on long before the answer ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './support/chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { demoAnswer } from '../src/providers/mock/answer.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { allSnippets, findTools, runProcess, snippet, startPageServer, type PageServer, type ProcessResult, type Tool } from './support/guides.js';
import { waitFor, within } from './support/wait.js';

const repository = new URL('..', import.meta.url).pathname;
const tools = findTools();

/** Whether to run a block needing `tool`; without it, fail on CI (naming the package) and skip elsewhere. */
function available(tool: Tool): boolean {
  if (tool.command) return true;
  if (process.env['CI']) return true; // runs, and its first test fails naming the package
  console.warn(`guides.test.ts: skipping the tests that need ${tool.debianPackage}: ${tool.missing} (apt-get install ${tool.debianPackage}; on CI this fails)`);
  return false;
}
function requireTool(tool: Tool): string {
  if (!tool.command) throw new Error(`${tool.missing}: install the Debian package ${tool.debianPackage} (.ci/run does)`);
  return tool.command;
}

// 20 deltas 40 ms apart (about 0.8 s an answer) with heartbeats every 30 ms, so `: ping` lines sit
// between the events every snippet reads; `slow` takes about 2 s, for the nginx timing.
const config = {
  auth: { mode: 'keys' },
  server: { heartbeatMs: 30 },
  providers: { demo: { type: 'mock', chunkCount: 20, delayMs: 40 }, slow: { type: 'mock', chunkCount: 20, delayMs: 100 } },
  models: { 'sluice-demo': { provider: 'demo' }, slow: { provider: 'slow', model: 'sluice-demo' } },
  defaultModel: 'sluice-demo',
};

let gateway: TestGateway;
let key: string;
let pages: PageServer;

beforeAll(async () => {
  gateway = await startGateway(config);
  key = (await gateway.app.keys.create({ userId: 'guide-reader', role: 'user' })).key;
  pages = await startPageServer(gateway.url);
});
afterAll(async () => {
  await pages?.close();
  await gateway?.close();
});

/** An SSE body cut into events; comments (`: ping`) dropped. */
function parseEvents(body: string): { event: string; id: string | undefined; data: string }[] {
  return body
    .split('\n\n')
    .map((block) => block.split('\n').filter((line) => line !== '' && !line.startsWith(':')))
    .filter((lines) => lines.length > 0)
    .map((lines) => {
      const field = (name: string) => lines.filter((line) => line.startsWith(`${name}: `)).map((line) => line.slice(name.length + 2));
      return { event: field('event')[0] ?? 'message', id: field('id')[0], data: field('data').join('\n') };
    });
}

/** The first output came well before the process ended: the client printed text as it arrived. */
function expectLive(result: { stdoutArrivals: number[]; exitedAtMs: number }, leadMs = 400): void {
  expect(result.stdoutArrivals.length).toBeGreaterThan(1);
  expect(result.exitedAtMs - (result.stdoutArrivals[0] ?? Infinity)).toBeGreaterThan(leadMs);
}

const testedSnippets = ['curl-openai', 'curl-native', 'openai-node', 'python-native', 'python-openai', 'java-chat', 'java-stop', 'java-push', 'browser-eventsource', 'fetch-streaming', 'vue-chat-js', 'vue-component', 'nginx-conf'];

describe('docs/guides', () => {
  it('every marked snippet is one this file runs, and each is found', () => {
    expect(allSnippets().map((found) => found.name).sort()).toEqual([...testedSnippets].sort());
  });

  it('README.md links the guides', () => {
    expect(readFileSync(join(repository, 'README.md'), 'utf8')).toMatch(/\[guides\]\(docs\/guides\/?\)/i);
  });

  it('docs/guides/README.md links every guide', () => {
    const index = readFileSync(join(repository, 'docs/guides/README.md'), 'utf8');
    const guides = readdirSync(join(repository, 'docs/guides')).filter((file) => file.endsWith('.md') && file !== 'README.md');
    for (const guide of guides) expect(index, guide).toContain(`](${guide})`);
  });
});

describe.skipIf(!available(tools.curl))('curl.md', () => {
  const environment = () => ({ SLUICE_URL: gateway.url, SLUICE_KEY: key });

  it('curl-openai: data lines only, the whole answer, a usage chunk and [DONE]', async () => {
    requireTool(tools.curl);
    const code = snippet('curl-openai');
    expect(code.language).toBe('sh');
    const result = await runProcess('bash', ['-c', code.code], { env: environment(), timeoutMs: 20_000 });
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.split('\n').filter((line) => line !== '' && !line.startsWith(':'));
    for (const line of lines) expect(line).toMatch(/^data: /);
    const payloads = lines.map((line) => line.slice('data: '.length));
    expect(payloads.at(-1)).toBe('[DONE]');
    const chunks = payloads.slice(0, -1).map((payload) => JSON.parse(payload) as { choices: { delta: { content?: string } }[]; usage?: { total_tokens: number } });
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe(demoAnswer('Hello!'));
    expect(chunks.at(-1)?.usage?.total_tokens).toBeGreaterThan(0);
    expectLive(result);
  });

  it('curl-native: meta, the deltas and done, each with an id <generationId>:<seq>', async () => {
    requireTool(tools.curl);
    const result = await runProcess('bash', ['-c', snippet('curl-native').code], { env: environment(), timeoutMs: 20_000 });
    expect(result.code, result.stderr).toBe(0);
    const events = parseEvents(result.stdout);
    expect(events[0]?.event).toBe('meta');
    expect(events.at(-1)).toMatchObject({ event: 'done', data: '{"finishReason":"stop"}' });
    for (const event of events) expect(event.id).toMatch(/^[A-Za-z0-9_-]+:\d+$/);
    const text = events.filter((event) => event.event === 'delta').map((event) => (JSON.parse(event.data) as { text: string }).text).join('');
    expect(text).toBe(demoAnswer('Hello!'));
    expectLive(result);
  });
});

describe('openai-node.md', () => {
  let directory: string;
  beforeAll(() => {
    // Inside the repository, so `import 'openai'` resolves from its node_modules.
    mkdirSync(join(repository, 'node_modules/.cache'), { recursive: true });
    directory = mkdtempSync(join(repository, 'node_modules/.cache/sluice-guides-'));
  });
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('openai-node: the SDK streams the answer and reports usage', async () => {
    const file = join(directory, 'chat.mjs');
    writeFileSync(file, snippet('openai-node').code);
    const result = await runProcess(process.execPath, [file], { env: { SLUICE_URL: gateway.url, SLUICE_KEY: key }, timeoutMs: 20_000 });
    expect(result.code, result.stderr).toBe(0);
    const [text, usage] = result.stdout.split('\nusage: ');
    expect(text).toBe(demoAnswer('Hello!'));
    expect(JSON.parse(usage ?? '')).toMatchObject({ prompt_tokens: expect.any(Number) as unknown, total_tokens: expect.any(Number) as unknown });
    expectLive(result);
  });
});

describe.skipIf(!available(tools.python))('python-requests.md', () => {
  let directory: string;
  beforeAll(() => {
    directory = mkdtempSync(join(repository, 'node_modules/.cache/sluice-guides-python-'));
  });
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('python-native: prints the text as it arrives, exact, although reads end inside characters', async () => {
    const python = requireTool(tools.python);
    const file = join(directory, 'chat.py');
    writeFileSync(file, snippet('python-native').code);
    // U+2028 is legal raw inside JSON and a line break to str.splitlines(): it must not cut the line.
    const question = 'Say 你好 \u2028 and 🙂';
    const splitsBefore = pages.splitCharacters;
    const result = await runProcess(python, [file, question], { env: { SLUICE_URL: pages.url, SLUICE_KEY: key }, timeoutMs: 20_000 });
    expect(result.code, result.stderr).toBe(0);
    expect(pages.splitCharacters - splitsBefore).toBeGreaterThan(5);
    const match = /^([\s\S]*)\n\[(\d+) tokens\]\n\[stop\]\n$/.exec(result.stdout);
    expect(match?.[1], result.stdout).toBe(demoAnswer(question));
    expect(Number(match?.[2])).toBeGreaterThan(0);
    expectLive(result);
  });

  it('python-openai: the OpenAI route, text then usage', async () => {
    const python = requireTool(tools.python);
    const file = join(directory, 'chat_openai.py');
    writeFileSync(file, snippet('python-openai').code);
    const result = await runProcess(python, [file], { env: { SLUICE_URL: pages.url, SLUICE_KEY: key }, timeoutMs: 20_000 });
    expect(result.code, result.stderr).toBe(0);
    const [text, usage] = result.stdout.split('\nusage: ');
    expect(text).toBe(demoAnswer('Hello!'));
    expect(usage).toMatch(/^\{'prompt_tokens': \d+, 'completion_tokens': \d+, 'total_tokens': \d+\}\n$/);
    expectLive(result);
  });
});

describe.skipIf(!available(tools.java))('java.md, run with `java File.java`', () => {
  let directory: string;
  beforeAll(() => {
    mkdirSync(join(repository, 'node_modules/.cache'), { recursive: true });
    directory = mkdtempSync(join(repository, 'node_modules/.cache/sluice-guides-java-'));
  });
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  // Each run compiles the file in memory before it starts: 3 s on an idle machine, over 30 s on a busy one.
  const javaTimeoutMs = 90_000;

  /** Writes the snippet as `<file>` and runs it as the guide says, held to Java 11's language and API. */
  function runJava(name: string, file: string, args: string[], env: Record<string, string>): Promise<ProcessResult> {
    const code = snippet(name);
    expect(code.language).toBe('java');
    writeFileSync(join(directory, file), code.code);
    return runProcess(requireTool(tools.java), ['--source', '11', file, ...args], { cwd: directory, env, timeoutMs: javaTimeoutMs - 5_000 });
  }

  it('java-chat: prints the answer as it arrives, exact (CJK, emoji), though reads end inside characters, in a C locale', async () => {
    const splitsBefore = pages.splitCharacters;
    // LC_ALL=C: System.out would print ? for every non-ASCII character; the snippet prints UTF-8.
    const result = await runJava('java-chat', 'Chat.java', [], { SLUICE_URL: pages.url, SLUICE_KEY: key, LC_ALL: 'C', LANG: 'C' });
    expect(result.code, result.stderr).toBe(0);
    // Several reads ended inside a character (the question is ASCII, so fewer than python-native's).
    expect(pages.splitCharacters - splitsBefore).toBeGreaterThanOrEqual(3);
    expect(demoAnswer('Hello!')).toMatch(/[\u4e00-\u9fff].*\u{1F44B}|\u{1F44B}.*[\u4e00-\u9fff]/su);
    const match = /^([\s\S]*)\n\[(\d+) tokens\]\n$/.exec(result.stdout);
    expect(match?.[1], result.stdout).toBe(demoAnswer('Hello!'));
    expect(Number(match?.[2])).toBeGreaterThan(0);
    expectLive(result);
  }, javaTimeoutMs);

  it('java-chat: a refused key is reported with its code, exit 1', async () => {
    const result = await runJava('java-chat', 'Chat.java', [], { SLUICE_URL: gateway.url, SLUICE_KEY: 'sk-sluice-aaaaaaaaaaaa-nope' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error 401 invalid_api_key: /);
  }, javaTimeoutMs);

  it('java-stop: closing the body stream from another thread ends the read and cancels the generation', async () => {
    // A 5 s answer, stopped after 1.5 s.
    const slow = await startGateway({ auth: { mode: 'keys' }, providers: { demo: { type: 'mock', chunkCount: 100, delayMs: 50 } }, models: { 'sluice-demo': { provider: 'demo' } }, defaultModel: 'sluice-demo' });
    try {
      const stopper = (await slow.app.keys.create({ userId: 'java-stopper', role: 'user' })).key;
      const result = await runJava('java-stop', 'Stop.java', ['1500'], { SLUICE_URL: slow.url, SLUICE_KEY: stopper });
      expect(result.code, result.stderr).toBe(0);
      const chunks = Number(/^stopped after (\d+) chunks\n$/.exec(result.stdout)?.[1]);
      expect(chunks, result.stdout).toBeGreaterThan(0);
      expect(chunks).toBeLessThan(100);
      await waitFor(() => slow.app.generations.active.size === 0, 'the generation to end', 2_000);
      await slow.app.generations.flushUsage();
      const [usage] = await slow.app.store.usage.aggregate({ from: 0, to: Number.MAX_SAFE_INTEGER, userId: 'java-stopper', groupBy: [] });
      expect(usage).toMatchObject({ requests: 1, cancelled: 1 });
    } finally {
      await slow.close();
    }
  }, javaTimeoutMs);

  it('java-push: a service key pushes to a user, and the push reaches their open hub connection', async () => {
    const service = (await gateway.app.keys.create({ userId: 'java-backend', role: 'service' })).key;
    const reader = (await gateway.app.keys.create({ userId: 'java-push-reader', role: 'user' })).key;
    const controller = new AbortController();
    const events = await fetch(`${gateway.url}/api/events`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${reader}` }, signal: controller.signal });
    expect(events.status).toBe(200);
    let received = '';
    const reading = (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of events.body as AsyncIterable<Uint8Array>) received += decoder.decode(chunk, { stream: true });
      } catch {
        // Aborted at the end of the test.
      }
    })();
    try {
      for (let attempt = 0; (await gateway.app.hub.connections('java-push-reader')).length === 0; attempt++) {
        if (attempt > 100) throw new Error('the hub never registered the events connection');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const text = '部署完成 ✅ 🚀 "quoted" \\ back';
      // Arguments are decoded with the locale's charset, so the push text needs a UTF-8 locale.
      const result = await runJava('java-push', 'Push.java', ['java-push-reader', text], { SLUICE_URL: gateway.url, SLUICE_KEY: service, LC_ALL: 'C.UTF-8' });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^200 \{"id":"\d+","connections":1\}\n$/);
      await waitFor(() => received.includes('event: notice'), 'the push on the hub connection', 5_000);
      const block = received.split('\n\n').find((part) => part.includes('event: notice')) ?? '';
      const data = block.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice('data: '.length)).join('\n');
      expect(JSON.parse(data)).toEqual({ text });
    } finally {
      controller.abort();
      await reading;
    }
  }, javaTimeoutMs);
});

interface PageResult {
  result: { text: string; finishReason?: string; usage?: { totalTokens: number }; generationId?: string | null };
  metas: unknown[];
  pieces: string[];
}

describe.skipIf(!available(tools.chromium))('browser guides, in headless Chromium', () => {
  let browser: Browser;
  const openPages: Page[] = [];
  beforeAll(async () => {
    browser = await launchChromium(requireTool(tools.chromium), 20_000);
    for (const name of ['browser-eventsource', 'fetch-streaming', 'vue-chat-js']) pages.addScript(name, snippet(name).code);
  });
  afterAll(async () => {
    for (const page of openPages) await page.close().catch(() => {});
    await browser?.close();
  });

  /** Opens the page, imports the snippet and calls its streamChat with `options` plus onMeta/onText. */
  async function runStreamChat(name: string, options: Record<string, unknown>, beforeCall = ''): Promise<PageResult> {
    const page = await browser.newPage();
    openPages.push(page);
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(pages.url);
    const script = `(async () => {
      const { streamChat } = await import('/snippets/${name}.js');
      const metas = [];
      const pieces = [];
      ${beforeCall}
      const result = await streamChat({ ...${JSON.stringify(options)}, onMeta: (meta) => metas.push(meta), onText: (piece) => { pieces.push(piece); globalThis.onPiece?.(pieces.length); } });
      return { result, metas, pieces };
    })()`;
    try {
      return await within(page.evaluate<PageResult>(script), 20_000, `${name} in Chromium`);
    } finally {
      expect(errors).toEqual([]);
    }
  }
  const chatRequests = () => pages.proxied.filter((request) => request.path.startsWith('/api/chat'));

  it('browser-eventsource: a ticket, then meta, deltas and done; it closes on done (no reconnect)', async () => {
    const before = chatRequests().length;
    const message = 'EventSource 你好 🙂';
    const { result, metas, pieces } = await runStreamChat('browser-eventsource', { token: key, message });
    expect(result.text).toBe(demoAnswer(message));
    expect(result).toMatchObject({ finishReason: 'stop', usage: { totalTokens: expect.any(Number) as unknown } });
    expect(metas).toHaveLength(1);
    expect(pieces.length).toBe(20);
    await new Promise((resolve) => setTimeout(resolve, 1300)); // past `retry: 1000`
    expect(chatRequests().length - before).toBe(1);
  });

  it('browser-eventsource: a connection dropped mid-answer is resumed by EventSource with the spent ticket', async () => {
    const before = chatRequests().length;
    pages.dropNextChatAfterDeltas = 5;
    const message = 'drop me 🙂';
    const { result, metas } = await runStreamChat('browser-eventsource', { token: key, message });
    expect(result.text).toBe(demoAnswer(message));
    expect(metas).toHaveLength(1);
    const requests = chatRequests().slice(before);
    expect(requests).toHaveLength(2);
    expect(requests[1]?.lastEventId).toMatch(/^[A-Za-z0-9_-]+:\d+$/);
  });

  it('fetch-streaming: POST, a stream reader and eventsource-parser give the exact text although reads end inside characters', async () => {
    const splitsBefore = pages.splitCharacters;
    const message = 'fetch 你好 🙂 \u2028 ✨';
    const { result } = await runStreamChat('fetch-streaming', { token: key, message });
    expect(result.text).toBe(demoAnswer(message));
    expect(result.finishReason).toBe('stop');
    expect(result.generationId).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(pages.splitCharacters - splitsBefore).toBeGreaterThan(5);
  });

  it('vue-chat-js: fetch-event-source streams the answer; heartbeats never reach onmessage', async () => {
    const message = 'Vue 你好 🙂';
    const { result, metas, pieces } = await runStreamChat('vue-chat-js', { token: key, message });
    expect(result.text).toBe(demoAnswer(message));
    expect(result).toMatchObject({ finishReason: 'stop', usage: { totalTokens: expect.any(Number) as unknown } });
    expect(metas).toHaveLength(1);
    expect(pieces).toHaveLength(20);
  });

  it('vue-chat-js: after a dropped connection it re-sends the POST with last-event-id, and Sluice resumes the one generation', async () => {
    const before = chatRequests().length;
    pages.dropNextChatAfterDeltas = 6;
    const message = 'resume 🙂';
    const { result, metas } = await runStreamChat('vue-chat-js', { token: key, message });
    expect(result.text).toBe(demoAnswer(message)); // a second generation would repeat text
    expect(metas).toHaveLength(1); // a resume carries no second meta
    const requests = chatRequests().slice(before);
    expect(requests.map((request) => request.method)).toEqual(['POST', 'POST']);
    expect(requests[0]?.lastEventId).toBeUndefined();
    expect(requests[1]?.lastEventId).toMatch(/^[A-Za-z0-9_-]+:\d+$/);
  });

  it('vue-component: the guide\'s ChatBox.vue, compiled and mounted, streams the answer into the page as it arrives', async () => {
    const { parse, compileScript } = await import('vue/compiler-sfc');
    const { descriptor, errors } = parse(snippet('vue-component').code, { filename: 'ChatBox.vue' });
    expect(errors).toEqual([]);
    const compiled = compileScript(descriptor, { id: 'chatbox', inlineTemplate: true });
    // The component imports ./chat.js: the guide's own chat.js snippet, served beside it.
    pages.addScript('vue-component', compiled.content.replace("from './chat.js'", "from '/snippets/vue-chat-js.js'"));
    const page = await browser.newPage();
    openPages.push(page);
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(pages.url);
    await page.evaluate(`(async () => {
      const { createApp } = await import('vue');
      const { default: ChatBox } = await import('/snippets/vue-component.js');
      const root = document.createElement('div');
      document.body.append(root);
      createApp(ChatBox, { token: ${JSON.stringify(key)} }).mount(root);
    })()`);
    const message = 'Vue 组件 🙂';
    await page.fill('textarea', message);
    await page.click('button');
    const lengths: number[] = [];
    const deadline = performance.now() + 15_000;
    let text = '';
    while (text !== demoAnswer(message) && performance.now() < deadline) {
      text = (await page.textContent('.answer')) ?? '';
      lengths.push(text.length);
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    expect(text).toBe(demoAnswer(message));
    // It grew on screen while streaming, not all at once at the end.
    expect(new Set(lengths.filter((length) => length > 0 && length < text.length)).size).toBeGreaterThanOrEqual(3);
    expect(await page.isEnabled('textarea')).toBe(true);
    expect(pageErrors).toEqual([]);
  });

  it('vue-chat-js with openWhenHidden: false: a hidden tab closes the stream, showing it again resumes', async () => {
    const before = chatRequests().length;
    const message = 'hide 🙂';
    // After the third piece the tab is hidden for 300 ms (document.hidden is faked: headless has no tabs).
    const hideAndShow = `let hidden = false;
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
      globalThis.onPiece = (count) => {
        if (count !== 3) return;
        hidden = true;
        document.dispatchEvent(new Event('visibilitychange'));
        setTimeout(() => { hidden = false; document.dispatchEvent(new Event('visibilitychange')); }, 300);
      };`;
    const { result, metas } = await runStreamChat('vue-chat-js', { token: key, message, openWhenHidden: false }, hideAndShow);
    expect(result.text).toBe(demoAnswer(message));
    expect(metas).toHaveLength(1);
    const requests = chatRequests().slice(before);
    expect(requests).toHaveLength(2);
    expect(requests[1]?.lastEventId).toMatch(/^[A-Za-z0-9_-]+:\d+$/);
  });
});

/** A free TCP port on 127.0.0.1 (closed again; nginx takes it a moment later). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** The guide's config with the ports and file paths a test run needs; every substitution must apply. */
function nginxConfigForTest(config: string, listenPort: number, upstreamPort: number, directory: string): string {
  const temporaryPaths = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `${kind}_temp_path ${directory}/${kind};`).join(' ');
  const substitutions: [string, string][] = [
    ['pid /run/nginx.pid;', `pid ${directory}/nginx.pid;`],
    ['error_log /var/log/nginx/error.log warn;', `error_log ${directory}/error.log warn;`],
    ['access_log /var/log/nginx/access.log;', `access_log ${directory}/access.log; ${temporaryPaths}`],
    ['listen 80;', `listen 127.0.0.1:${listenPort.toString()};`],
    ['server 127.0.0.1:8080;', `server 127.0.0.1:${upstreamPort.toString()};`],
  ];
  let result = config;
  for (const [from, to] of substitutions) {
    if (!result.includes(from)) throw new Error(`docs/guides/nginx.md no longer contains "${from}": update nginxConfigForTest`);
    result = result.replace(from, to);
  }
  return result;
}

describe.skipIf(!available(tools.nginx))('nginx.md', () => {
  let directory: string;
  let nginx: ChildProcess | undefined;
  let nginxUrl: string;
  let nginxOutput = '';

  beforeAll(async () => {
    const command = requireTool(tools.nginx);
    directory = mkdtempSync('/tmp/sluice-guides-nginx-');
    chmodSync(directory, 0o755); // as root, nginx's workers run as nobody
    const port = await freePort();
    const file = join(directory, 'nginx.conf');
    writeFileSync(file, nginxConfigForTest(snippet('nginx-conf').code, port, Number(new URL(gateway.url).port), directory));
    nginx = spawn(command, ['-p', directory, '-e', join(directory, 'error.log'), '-c', file, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
    nginx.stdout?.on('data', (chunk: Buffer) => (nginxOutput += chunk.toString()));
    nginx.stderr?.on('data', (chunk: Buffer) => (nginxOutput += chunk.toString()));
    let exited = false;
    nginx.on('exit', () => (exited = true));
    let listening = false;
    const probe = () => {
      const socket = connect(port, '127.0.0.1', () => {
        listening = true;
        socket.destroy();
      });
      socket.on('error', () => socket.destroy());
    };
    const timer = setInterval(probe, 50);
    try {
      await waitFor(() => listening || exited, 'nginx to listen', 10_000);
    } finally {
      clearInterval(timer);
    }
    if (!listening) throw new Error(`nginx did not start: ${nginxOutput}`);
    nginxUrl = `http://127.0.0.1:${port.toString()}`;
  });
  afterAll(async () => {
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((resolve) => nginx?.once('exit', resolve));
      nginx.kill('SIGTERM');
      await within(exited, 5000, 'nginx to stop').catch(() => nginx?.kill('SIGKILL'));
    }
    if (directory) rmSync(directory, { recursive: true, force: true });
  });

  it('nginx-conf: the first delta comes through nginx within 1 s of a 2 s answer', async () => {
    const startedAt = performance.now();
    const response = await fetch(`${nginxUrl}/api/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ message: 'through nginx', model: 'slow' }),
      signal: AbortSignal.timeout(10_000),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('content-encoding')).toBeNull();
    const decoder = new TextDecoder();
    let body = '';
    let firstDeltaAtMs: number | undefined;
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      body += decoder.decode(chunk, { stream: true });
      if (firstDeltaAtMs === undefined && body.includes('event: delta')) firstDeltaAtMs = performance.now() - startedAt;
    }
    const endedAtMs = performance.now() - startedAt;
    expect(firstDeltaAtMs).toBeLessThan(1000);
    expect(endedAtMs).toBeGreaterThan(1800);
    const text = parseEvents(body).filter((event) => event.event === 'delta').map((event) => (JSON.parse(event.data) as { text: string }).text).join('');
    expect(text).toBe(demoAnswer('through nginx'));
  });

  it('nginx-conf: a WebSocket chat goes through nginx (Upgrade and Connection passed on)', async () => {
    const socket = new WebSocket(`${nginxUrl.replace('http', 'ws')}/api/ws`, { headers: { authorization: `Bearer ${key}` } });
    const frames: { type: string; data?: { text?: string } }[] = [];
    try {
      await within(new Promise((resolve, reject) => {
        socket.once('open', resolve);
        socket.once('error', reject);
      }), 5000, 'the WebSocket to open through nginx');
      const finished = new Promise<void>((resolve) => {
        socket.on('message', (raw: Buffer) => {
          const frame = JSON.parse(raw.toString('utf8')) as { type: string; data?: { text?: string } };
          frames.push(frame);
          if (frame.type === 'done' || (frame.type === 'error' && frames.some((seen) => seen.type === 'pong'))) resolve();
        });
      });
      socket.send(JSON.stringify({ type: 'ping' }));
      socket.send(JSON.stringify({ type: 'chat', id: 'c1', message: 'over ws' }));
      await within(finished, 10_000, 'the WebSocket chat to finish');
    } finally {
      socket.close();
    }
    expect(frames.some((frame) => frame.type === 'pong')).toBe(true);
    expect(frames.at(-1)?.type).toBe('done');
    expect(frames.filter((frame) => frame.type === 'delta').map((frame) => frame.data?.text ?? '').join('')).toBe(demoAnswer('over ws'));
  });
});
