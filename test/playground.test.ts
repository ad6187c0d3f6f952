// The playground at GET / in a real browser (headless Chromium through playwright-core) against a
// real Sluice with keys and a slow demo model: the page loads without console errors, an answer
// grows on screen while it streams, Stop cancels the generation on the gateway, a reload in the
// middle of an answer resumes it to the full text, a hub push shows up, model output that looks
// like HTML stays text, and the static routes serve nothing off their allow-list.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoAnswer } from '../src/providers/mock/answer.js';
import { assertBuildIsCurrent } from './support/dist-freshness.js';
import { hasChromium, launchChromium, requireChromiumOnCi } from './support/chromium.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { waitFor } from './support/wait.js';

const root = new URL('..', import.meta.url).pathname;
const screenshotPath = join(root, 'test-results', 'playground.png');
/** 40 deltas 50 ms apart: about two seconds per answer, slow enough to watch it grow. */
const chunkCount = 40;

requireChromiumOnCi('test/playground.test.ts', 'the playground');

describe.runIf(hasChromium)('the playground at GET /', () => {
  let gateway: TestGateway;
  let browser: Browser;
  let userKey = '';
  let adminKey = '';
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    // GET /client/* serves the compiled client, which npm test builds before vitest starts.
    assertBuildIsCurrent();
    gateway = await startGateway({
      auth: { mode: 'keys' },
      providers: { demo: { type: 'mock', chunkCount, delayMs: 50 } },
      models: { demo: { provider: 'demo', model: 'sluice-demo' } },
      defaultModel: 'demo',
    });
    userKey = (await gateway.app.keys.create({ userId: 'alice', role: 'user' })).key;
    adminKey = (await gateway.app.keys.create({ userId: 'ops', role: 'admin' })).key;
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    await gateway?.close();
  });

  interface Opened {
    page: Page;
    /** Console errors and uncaught exceptions, as text. */
    problems: string[];
  }

  /** A fresh browser profile on the playground, with the user's key entered and accepted. */
  async function openPlayground(): Promise<Opened> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    contexts.push(context);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('dialog', (dialog) => {
      problems.push(`dialog: ${dialog.message()}`);
      void dialog.dismiss();
    });
    await page.goto(`${gateway.url}/`);
    await page.getByLabel('API key').fill(userKey);
    await page.getByRole('button', { name: 'Use key' }).click();
    await page.locator('#model-select option[value="demo"]').waitFor({ state: 'attached' });
    await expect.poll(() => page.locator('#hub-status').textContent()).toBe('listening');
    return { page, problems };
  }

  async function ask(page: Page, question: string): Promise<void> {
    await page.getByLabel('Message', { exact: true }).fill(question);
    await page.getByRole('button', { name: 'Send' }).click();
  }

  const answerText = async (page: Page) => (await page.locator('#answer').textContent()) ?? '';
  const isStreaming = async (page: Page) => (await page.locator('.message.streaming').count()) > 0;

  async function waitForAnswerEnd(page: Page, timeoutMs = 10_000): Promise<void> {
    await page.locator('#answer[aria-busy="false"]').waitFor({ state: 'attached', timeout: timeoutMs });
  }

  it('serves the page, its files, the client and eventsource-parser with the right types, no-cache and a strict CSP', async () => {
    const page = await fetch(`${gateway.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const html = await page.text();
    const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
    expect(JSON.parse(importMap)).toMatchObject({ imports: { 'eventsource-parser': '/vendor/eventsource-parser.js' } });
    const csp = page.headers.get('content-security-policy') ?? '';
    const scriptSources = /(?:^|; )script-src ([^;]*)/.exec(csp)?.[1]?.split(' ') ?? [];
    expect(scriptSources).toEqual(["'self'", `'sha256-${createHash('sha256').update(importMap).digest('base64')}'`]);
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe');

    for (const [path, type] of [
      ['/web/playground.js', 'text/javascript; charset=utf-8'],
      ['/web/playground.css', 'text/css; charset=utf-8'],
      ['/client/index.js', 'text/javascript; charset=utf-8'],
      ['/vendor/eventsource-parser.js', 'text/javascript; charset=utf-8'],
    ] as const) {
      const response = await fetch(`${gateway.url}${path}`);
      expect(response.status, path).toBe(200);
      expect(response.headers.get('content-type'), path).toBe(type);
      expect(response.headers.get('cache-control'), path).toBe('no-cache');
    }
    expect(await (await fetch(`${gateway.url}/vendor/eventsource-parser.js`)).text()).toContain('createParser');
  });

  it('refuses every path off the allow-list with 404', async () => {
    for (const path of [
      '/web/index.html',
      '/web/..%2Fpackage.json',
      '/web/%2e%2e%2fsrc%2fapp.ts',
      '/web/..%5Cpackage.json',
      '/client/index.d.ts',
      '/client/index.js.map',
      '/client/..%2F..%2Fpackage.json',
      '/client/%2Fetc%2Fpasswd',
      '/vendor/index.cjs',
      '/vendor/..%2F..%2Fnode_modules%2Feventsource-parser%2Fpackage.json',
      '/web/playground.js/x',
      '/package.json',
    ]) {
      const response = await fetch(`${gateway.url}${path}`);
      expect(response.status, path).toBe(404);
      expect(await response.text(), path).not.toContain('"name": "sluice"');
    }
  });

  it('loads with no console errors, keeps the key out of the URL, and forgets it on request', async () => {
    const { page, problems } = await openPlayground();
    expect(page.url()).toBe(`${gateway.url}/`);
    expect(await page.evaluate('localStorage.getItem("sluice.playground.apiKey")')).toBe(userKey);
    await expect.poll(() => page.locator('#model-select option').allTextContents()).toContain('demo (demo)');
    await page.reload();
    await page.getByRole('button', { name: 'Forget key' }).waitFor();
    await page.getByRole('button', { name: 'Forget key' }).click();
    await page.getByLabel('API key').waitFor();
    expect(await page.evaluate('localStorage.getItem("sluice.playground.apiKey")')).toBeNull();
    expect(await page.getByLabel('Message', { exact: true }).isDisabled()).toBe(true);
    expect(problems).toEqual([]);
  });

  it('streams an answer that grows on screen before it ends, with time to first token and usage', async () => {
    const { page, problems } = await openPlayground();
    const question = 'How does streaming look?';
    await ask(page, question);
    await page.locator('.message.streaming').waitFor({ state: 'attached' });
    const lengths: number[] = [];
    while (await isStreaming(page)) {
      lengths.push((await answerText(page)).length);
      await page.waitForTimeout(40);
    }
    const distinctGrowing = lengths.filter((length, index) => length > 0 && length > (lengths[index - 1] ?? 0));
    expect(distinctGrowing.length).toBeGreaterThanOrEqual(3);
    expect(new Set(lengths).size).toBeGreaterThanOrEqual(4);
    await waitForAnswerEnd(page);
    expect(await answerText(page)).toBe(demoAnswer(question));
    expect(lengths.at(-1) ?? 0).toBeLessThanOrEqual(demoAnswer(question).length);
    expect(lengths.some((length) => length > 0 && length < demoAnswer(question).length)).toBe(true);
    const details = (await page.locator('.message.assistant .details').last().textContent()) ?? '';
    expect(details).toMatch(/first token \d+ ms/);
    expect(details).toMatch(/tokens: \d+ prompt \+ \d+ completion = \d+ total/);
    expect(details).toContain('done');
    expect(await page.locator('#status').textContent()).toBe('Done.');
    expect(await page.evaluate('sessionStorage.getItem("sluice.playground.pending")')).toBeNull();
    expect(problems).toEqual([]);
  });

  it('Stop cancels: the answer stops growing and the generation ends cancelled on the gateway', async () => {
    const { page, problems } = await openPlayground();
    const question = 'Please stop me';
    await ask(page, question);
    await expect.poll(async () => (await answerText(page)).length, { timeout: 5000 }).toBeGreaterThan(0);
    expect(gateway.app.generations.active.size).toBe(1);
    await page.getByRole('button', { name: 'Stop' }).click();
    await waitForAnswerEnd(page, 5000);
    expect(await page.locator('#status').textContent()).toBe('Stopped: the answer was cancelled.');
    expect(await page.locator('.message.assistant .details').last().textContent()).toContain('cancelled');
    await waitFor(() => gateway.app.generations.active.size === 0, 'the cancelled generation to end on the gateway', 3000);
    const stopped = await answerText(page);
    await page.waitForTimeout(500);
    expect(await answerText(page)).toBe(stopped);
    expect(stopped.length).toBeLessThan(demoAnswer(question).length);
    expect(demoAnswer(question).startsWith(stopped)).toBe(true);
    expect(await page.evaluate('sessionStorage.getItem("sluice.playground.pending")')).toBeNull();
    expect(problems).toEqual([]);
  });

  it('a reload in the middle of an answer resumes it, and the final text is the whole answer', async () => {
    const { page, problems } = await openPlayground();
    const question = 'Survive a reload, please';
    await ask(page, question);
    await expect.poll(async () => (await answerText(page)).length, { timeout: 5000 }).toBeGreaterThan(10);
    const beforeReload = await answerText(page);
    expect(beforeReload.length).toBeLessThan(demoAnswer(question).length / 2);
    await page.reload();
    // The new page shows the question and the text so far at once, then keeps streaming.
    await page.locator('#answer').waitFor({ state: 'attached' });
    const firstSeen = await answerText(page);
    expect(firstSeen.startsWith(beforeReload)).toBe(true);
    expect(firstSeen.length).toBeLessThan(demoAnswer(question).length);
    await waitForAnswerEnd(page);
    expect(await answerText(page)).toBe(demoAnswer(question));
    expect(await page.locator('.message.user .text').last().textContent()).toBe(question);
    expect(await page.evaluate('sessionStorage.getItem("sluice.playground.pending")')).toBeNull();
    expect(problems).toEqual([]);
  });

  it('model output that looks like HTML is shown as literal text and creates no element', async () => {
    const { page, problems } = await openPlayground();
    const question = '<img src=x onerror=alert(1)><script>alert(2)</script><b>bold</b>';
    await ask(page, question);
    await waitForAnswerEnd(page);
    expect(await answerText(page)).toBe(demoAnswer(question));
    expect(await answerText(page)).toContain('<img src=x onerror=alert(1)>');
    expect(await page.locator('.thread img, .thread script, .thread b').count()).toBe(0);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('#answer > *').count()).toBe(0);
    expect(problems).toEqual([]);
  });

  it('keeps conversations: the list, a new conversation, and loading one back', async () => {
    const { page, problems } = await openPlayground();
    const question = 'Remember this one';
    await ask(page, question);
    await waitForAnswerEnd(page);
    const conversationId = await page.evaluate<string>('sessionStorage.getItem("sluice.playground.conversationId")');
    const listed = page.locator('#conversation-list button.open[aria-current="true"]');
    await listed.waitFor();
    await page.getByRole('button', { name: 'New conversation' }).click();
    expect(await page.locator('#thread li').count()).toBe(0);
    expect(await page.evaluate('sessionStorage.getItem("sluice.playground.conversationId")')).not.toBe(conversationId);
    await page.locator(`#conversation-list button.open[data-conversation-id="${conversationId}"]`).click();
    await expect.poll(() => page.locator('#thread .text').allTextContents()).toEqual([question, demoAnswer(question)]);
    expect(problems).toEqual([]);
  });

  it('a push sent with POST /api/push appears in the notifications panel as text', async () => {
    const { page, problems } = await openPlayground();
    const connected = async () => (await gateway.app.hub.connections('alice')).some((connection) => connection.transport === 'sse');
    await expect.poll(connected, { timeout: 5000 }).toBe(true);
    const response = await fetch(`${gateway.url}/api/push`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: { users: ['alice'] }, event: 'deploy', data: { text: 'Release at 17:00 <b>sharp</b>' } }),
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { connections: number }).connections).toBeGreaterThanOrEqual(1);
    const item = page.locator('#notification-list li').first();
    await expect.poll(() => item.textContent(), { timeout: 5000 }).toContain('deploy');
    expect(await item.locator('.data').textContent()).toContain('Release at 17:00 <b>sharp</b>');
    expect(await page.locator('#notification-list b').count()).toBe(0);

    // The picture for a reader of the test results: an answer, its details, and the push.
    await ask(page, 'What does the playground show?');
    await waitForAnswerEnd(page);
    mkdirSync(join(root, 'test-results'), { recursive: true });
    await page.screenshot({ path: screenshotPath, fullPage: true });
    expect(existsSync(screenshotPath)).toBe(true);
    expect(problems).toEqual([]);
  });

  it('works on a narrow screen: one column, nothing wider than the viewport', async () => {
    const { page, problems } = await openPlayground();
    await page.setViewportSize({ width: 360, height: 740 });
    await ask(page, 'Small screens too?');
    await waitForAnswerEnd(page);
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(360);
    const chat = await page.locator('main.chat').boundingBox();
    const conversations = await page.locator('nav.conversations').boundingBox();
    expect(chat && conversations && conversations.y >= chat.y + chat.height).toBe(true);
    expect(problems).toEqual([]);
  });
});
