// The operator console at GET /admin in a real browser (headless Chromium through playwright-core)
// against a real Sluice with keys, as an operator works: a user key is refused with a clear
// message; an admin signs in, creates a key (secret shown once, copied), the key is used from the
// official `openai` package, the overview counts the request and its spend, the request log finds
// it with its cost and text, the Live view sees a user's hub connection, pushes to that user and closes it; usage
// downloads as CSV; a key created with a daily budget shows its cost in Requests and Usage and is then
// refused with 429 budget_exceeded; providers show their health and a pool's deployments, whose
// refused key and cooling deployment are reset from the page; the page fits a phone's width. The page must load
// with no console error (a CSP or Trusted Types violation is one). Screenshots of each view go to
// test-results/console-*.png.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasChromium, launchChromium, requireChromiumOnCi } from './support/chromium.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startMockPoolUpstream, type MockPoolUpstream } from './support/mock-pool-upstream.js';
import { waitFor } from './support/wait.js';

const root = new URL('..', import.meta.url).pathname;
const resultsDirectory = join(root, 'test-results');

requireChromiumOnCi('test/console.test.ts', 'the console');

describe.runIf(hasChromium)('the operator console at GET /admin', () => {
  let gateway: TestGateway;
  let upstream: MockPoolUpstream;
  const poolKeys = ['sk-pool-one-0123456789', 'sk-pool-two-0123456789'];
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let adminKey = '';
  let userKey = '';
  const problems: string[] = [];

  const screenshot = (name: string) => page.screenshot({ path: join(resultsDirectory, `console-${name}.png`), fullPage: true });
  const open = async (view: string) => {
    await page.locator(`#nav-${view}`).click();
    await page.locator(`#view-${view}`).waitFor();
  };

  beforeAll(async () => {
    mkdirSync(resultsDirectory, { recursive: true });
    // A pool of two deployments at an OpenAI-compatible upstream that checks its keys (docs/pools.md).
    upstream = await startMockPoolUpstream(poolKeys);
    gateway = await startGateway({
      auth: { mode: 'keys' },
      log: { level: 'warn', requests: true },
      providers: {
        demo: { type: 'mock', chunkCount: 6, delayMs: 5 },
        'pool-a': { type: 'openai', baseUrl: upstream.baseUrlOf('a'), apiKeys: poolKeys },
        'pool-b': { type: 'openai', baseUrl: upstream.baseUrlOf('b'), apiKey: poolKeys[1] },
      },
      models: {
        // A price, so the request's cost shows (docs/spend.md): per million tokens.
        demo: { provider: 'demo', model: 'sluice-demo', price: { input: 1000, output: 2000, currency: 'USD' } },
        pooled: { strategy: 'ordered', deployments: [{ provider: 'pool-a', model: 'm' }, { provider: 'pool-b', model: 'm' }] },
      },
      defaultModel: 'demo',
      // A cooldown long enough to be seen before it ends on a loaded machine.
      router: { cooldown: { initialMs: 60_000, maxMs: 120_000 } },
    });
    adminKey = (await gateway.app.keys.create({ userId: 'ops', role: 'admin' })).key;
    userKey = (await gateway.app.keys.create({ userId: 'alice', role: 'user' })).key;
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gateway.url });
    page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('dialog', (dialog) => void dialog.accept());
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await gateway?.close();
    await upstream?.close();
  });

  it('serves the page with a strict CSP and the vendored modules from node_modules', async () => {
    const response = await fetch(`${gateway.url}/admin`);
    expect(response.status).toBe(200);
    const html = await response.text();
    const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`script-src 'self' 'sha256-${createHash('sha256').update(importMap).digest('base64')}'`);
    expect(csp).toContain("require-trusted-types-for 'script'");
    expect(csp).not.toContain('unsafe');
    const preact = await (await fetch(`${gateway.url}/admin/vendor/preact.js`)).text();
    expect(preact).toBe(readFileSync(join(root, 'node_modules/preact/dist/preact.mjs'), 'utf8'));
    for (const path of ['/admin/vendor/preact-hooks.js', '/admin/vendor/htm.js', '/admin/vendor/uplot.js', '/admin/vendor/uplot.css', '/admin/assets/console.js', '/admin/assets/views.js']) {
      expect((await fetch(`${gateway.url}${path}`)).status, path).toBe(200);
    }
    for (const path of ['/admin/vendor/package.json', '/admin/vendor/..%2F..%2Fpackage.json', '/admin/assets/index.html', '/admin/assets/..%2F..%2Fsrc%2Fapp.ts', '/admin/vendor/__proto__']) {
      expect((await fetch(`${gateway.url}${path}`)).status, path).toBe(404);
    }
  });

  it('refuses a user key with a clear message, and signs an admin in without putting the key in the URL', async () => {
    await page.goto(`${gateway.url}/admin`);
    await page.getByLabel('Admin key').fill(userKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('#sign-in-error').textContent()).toContain('not an admin key');
    expect(await page.evaluate('localStorage.getItem("sluice.console.adminKey")')).toBeNull();
    await screenshot('sign-in-refused');

    await page.getByLabel('Admin key').fill(adminKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#view-overview').waitFor();
    expect(await page.locator('#signed-in-as').textContent()).toBe('ops (admin)');
    expect(page.url()).not.toContain(adminKey);
    // A reload keeps the session: the key stays in this browser.
    await page.reload();
    await page.locator('#view-overview').waitFor();
    await page.locator('#stat-requests-today').waitFor();
    await screenshot('overview-empty');
  });

  let createdKey = '';

  it('creates a key, shows its secret once with a copy button, and finds it by search', async () => {
    await open('keys');
    await page.locator('#key-user').fill('carol');
    await page.locator('#key-name').fill('<img src=x onerror=alert(1)>');
    await page.locator('#key-models').fill('demo');
    await page.locator('#key-limit-requestsPerMinute').fill('60');
    await page.locator('#create-key').click();
    createdKey = (await page.locator('#new-key-secret').textContent()) ?? '';
    expect(createdKey).toMatch(/^sk-sluice-/);
    await page.locator('#copy-key').click();
    await expect.poll(() => page.locator('#copy-status').textContent()).toBe('Copied.');
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(createdKey);
    await page.locator('#key-search').fill('carol');
    await expect.poll(() => page.locator('#key-table tbody tr').count()).toBe(1);
    // The name is text, not markup.
    expect(await page.locator('#key-table img').count()).toBe(0);
    expect(await page.locator('#key-table tbody tr').textContent()).toContain('<img src=x onerror=alert(1)>');
    await screenshot('keys');
    await page.locator('#dismiss-key').click();
    expect(await page.locator('#new-key-secret').count()).toBe(0);
  });

  it('counts a request made with the new key from the openai package in the overview', async () => {
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: createdKey, maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'What does the console see?' }] });
    expect(completion.choices[0]?.message.content).toBeTruthy();
    await gateway.app.generations.flushUsage();
    await open('overview');
    await expect.poll(() => page.locator('#stat-requests-today .stat-value').textContent(), { timeout: 15_000 }).toBe('1');
    expect(Number(await page.locator('#stat-tokens-today .stat-value').textContent())).toBeGreaterThan(0);
    expect(await page.locator('#stat-cost-today .stat-value').textContent()).toMatch(/^0\.\d{6} USD$/);
    expect(await page.locator('#chart-requests canvas').count()).toBe(1);
    expect(await page.locator('#chart-ttft canvas').count()).toBe(1);
    await screenshot('overview');
  });

  it('finds the request in the log, with its prompt and answer as text', async () => {
    await open('requests');
    await page.locator('#filter-user').fill('carol');
    await page.locator('#filter-outcome').selectOption('completed');
    await page.locator('#apply-filters').click();
    await expect.poll(() => page.locator('#request-table tbody tr').count()).toBe(1);
    const row = page.locator('#request-table tbody tr').first();
    expect(await row.textContent()).toContain('demo');
    expect(await row.locator('td[data-column="cost"]').textContent()).toMatch(/^0\.\d{6} USD$/);
    await row.click();
    expect(JSON.parse((await page.locator('#request-prompt').textContent()) ?? 'null')).toEqual([{ role: 'user', content: 'What does the console see?' }]);
    expect((await page.locator('#request-answer').textContent())?.length).toBeGreaterThan(0);
    await screenshot('requests');
    await page.locator('#filter-outcome').selectOption('error');
    await page.locator('#apply-filters').click();
    await page.locator('#request-table-empty').waitFor();
  });

  it("sees a user's hub connection, pushes to the user, and closes the connection", async () => {
    const controller = new AbortController();
    const events = await fetch(`${gateway.url}/api/events`, { headers: { authorization: `Bearer ${createdKey}` }, signal: controller.signal });
    const reader: ReadableStreamDefaultReader<Uint8Array> = events.body!.getReader();
    let received = '';
    let ended = false;
    void (async () => {
      const decoder = new TextDecoder();
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) received += decoder.decode(chunk.value);
      ended = true;
    })().catch(() => undefined);
    try {
      await open('live');
      await page.locator('[data-close-user="carol"]').waitFor({ timeout: 10_000 });
      await page.locator('#push-users').fill('carol');
      await page.locator('#push-event').fill('notice');
      await page.locator('#push-data').fill('{"text": "maintenance at noon"}');
      await page.locator('#push-send').click();
      await expect.poll(() => page.locator('#live-notice').textContent()).toMatch(/reached 1 connection/);
      await waitFor(() => received.includes('maintenance at noon'), "the push on carol's event stream");
      await screenshot('live');
      await page.locator('[data-close-user="carol"]').click();
      await expect.poll(() => page.locator('#live-notice').textContent()).toBe('Closed 1 connection(s) of carol.');
      await waitFor(() => ended, "carol's event stream to end");
      expect(received).toContain('event: close');
      await page.locator('#no-connections').waitFor();
    } finally {
      controller.abort();
    }
  });

  it('shows usage as a chart and a table, and downloads it as CSV', async () => {
    await open('usage');
    await expect.poll(() => page.locator('#usage-table tbody tr').count()).toBe(1);
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#usage-csv').click()]);
    const path = await download.path();
    const csv = readFileSync(path, 'utf8').split(/\r?\n/);
    expect(csv[0]).toMatch(/^day,currency,cost,requests,/);
    expect(csv[1]).toMatch(new RegExp(`^${new Date().toISOString().slice(0, 10)},USD,0\\.\\d{6},1,`));
    await screenshot('usage');
    await page.locator('#usage-group').selectOption('user');
    await expect.poll(() => page.locator('#usage-table tbody tr').textContent()).toContain('carol');
  });

  it('creates a key with a daily budget in the form, shows its cost in Requests and Usage, then refuses it with 429 budget_exceeded', async () => {
    await open('keys');
    await page.locator('#key-user').fill('dave');
    await page.locator('#key-name').fill('budgeted');
    await page.locator('#key-dailyBudget').fill('0.001');
    await page.locator('#create-key').click();
    const budgetedKey = (await page.locator('#new-key-secret').textContent()) ?? '';
    expect(budgetedKey).toMatch(/^sk-sluice-/);
    await page.locator('#dismiss-key').click();
    await page.locator('#key-search').fill('dave');
    await expect.poll(() => page.locator('#key-table tbody tr').textContent()).toContain('dailyBudget 0.001');

    // Nothing spent yet: the first request is admitted, and charged its cost when it ends.
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: budgetedKey, maxRetries: 0 });
    const ask = () => client.chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'How much does this cost?' }] });
    expect((await ask()).choices[0]?.message.content).toBeTruthy();
    await gateway.app.generations.flushUsage();

    await open('requests');
    await page.locator('#filter-user').fill('dave');
    await page.locator('#filter-outcome').selectOption('completed');
    await page.locator('#apply-filters').click();
    await expect.poll(() => page.locator('#request-table tbody tr').count(), { timeout: 10_000 }).toBe(1);
    const cost = (await page.locator('#request-table tbody tr td[data-column="cost"]').textContent()) ?? '';
    expect(cost).toMatch(/^0\.\d{6} USD$/);
    expect(Number.parseFloat(cost)).toBeGreaterThan(0.001);
    await screenshot('budget-requests');

    await open('usage');
    await page.locator('#usage-group').selectOption('user');
    const daveRow = page.locator('#usage-table tbody tr', { hasText: 'dave' });
    await expect.poll(() => daveRow.locator('td[data-column="cost"]').textContent()).toBe(cost);
    await screenshot('budget-usage');

    // The spend is past the budget: the next request is refused before it reaches the upstream.
    const refused: unknown = await ask().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    const answer = refused as InstanceType<typeof OpenAI.RateLimitError>;
    expect(answer.status).toBe(429);
    expect(answer.code).toBe('budget_exceeded');
    expect(answer.message).toContain('key.dailyBudget is 0.001000 USD per UTC day');
    expect(Number(answer.headers?.get('retry-after'))).toBeGreaterThan(0);
    await gateway.app.generations.flushUsage();
    await open('requests');
    await page.locator('#filter-user').fill('dave');
    await page.locator('#filter-outcome').selectOption('refused');
    await page.locator('#apply-filters').click();
    await expect.poll(() => page.locator('#request-table tbody tr').count(), { timeout: 10_000 }).toBe(1);
    expect(await page.locator('#request-table tbody tr td[data-column="error"]').textContent()).toBe('budget_exceeded');
    await screenshot('budget-refused');
  });

  it('shows each provider with its health and last hour', async () => {
    await open('providers');
    await page.locator('#provider-demo').waitFor();
    const text = (await page.locator('#provider-demo').textContent()) ?? '';
    expect(text).toContain('healthy');
    expect(text).toContain('demo/sluice-demo');
    // carol's request and dave's (the refused one reached no provider).
    expect(text).toContain('Last hour: 2 requests');
    await screenshot('providers');
  });

  it("shows a pool's deployments with their health and keys, and resets a refused key and a cooling deployment", async () => {
    // The provider refuses pool-a's first key; then pool-a answers 503 once, so the pool moves to pool-b.
    upstream.revokeKey(poolKeys[0]!);
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: adminKey, maxRetries: 0 });
    const ask = async () => (await client.chat.completions.create({ model: 'pooled', messages: [{ role: 'user', content: 'Which deployment?' }] })).choices[0]?.message.content;
    expect(await ask()).toBe('served by a');
    upstream.setBehaviour('a', { failStatus: 503, times: 1 });
    expect(await ask()).toBe('served by b');

    await open('overview');
    await open('providers');
    // Every deployment of the pool is listed under its provider, with the alias that routes there.
    await expect.poll(() => page.locator('#provider-pool-b tbody tr').textContent()).toContain('pool-b/mpooled');
    expect(await page.locator('#provider-pool-a tbody tr td[data-column="state"]').textContent()).toBe('cooling');
    const poolA = page.locator('[data-deployment="pool-a/m"]');
    const poolB = page.locator('[data-deployment="pool-b/m"]');
    expect(await poolA.locator('.badge').textContent()).toBe('cooling');
    const text = (await poolA.textContent()) ?? '';
    expect(text).toContain('pooled');
    expect(text).toContain('upstream_unavailable');
    // Three attempts: refused key, the other key, the 503.
    expect(await poolA.locator('[data-field="requests"]').textContent()).toBe('3');
    expect(await poolA.locator('[data-field="cooldownUntil"]').textContent()).not.toBe('—');
    const firstKey = poolA.locator('tbody tr', { hasText: 'pool-a#1' });
    expect(await firstKey.locator('td[data-column="state"]').textContent()).toBe('disabled');
    expect(await firstKey.locator('td[data-column="disabled"]').textContent()).toMatch(/^yes/);
    expect(await firstKey.locator('td[data-column="errors"]').textContent()).toBe('upstream_auth_failed 1');
    expect(await poolA.locator('tbody tr', { hasText: 'pool-a#2' }).locator('td[data-column="state"]').textContent()).toBe('healthy');
    expect(await poolB.locator('.badge').textContent()).toBe('healthy');
    expect(await poolB.locator('[data-field="requests"]').textContent()).toBe('1');
    // Keys by id only: no secret reaches the page.
    for (const secret of poolKeys) expect(await page.content()).not.toContain(secret);
    await screenshot('deployments');

    // The secret was rotated upstream: the operator resets the key, then the deployment.
    upstream.reset();
    await page.locator('[data-reset="pool-a#1"]').click();
    await expect.poll(() => page.locator('#deployments-notice').textContent()).toContain('Reset pool-a#1');
    await expect.poll(() => firstKey.locator('td[data-column="disabled"]').textContent()).toBe('no');
    await page.locator('[data-reset="pool-a/m"]').click();
    await expect.poll(() => poolA.locator('.badge').textContent()).toBe('healthy');
    await expect.poll(() => page.locator('#provider-pool-a tbody tr td[data-column="state"]').textContent()).toBe('healthy');
    expect(await poolA.locator('[data-field="cooldownUntil"]').textContent()).toBe('—');
    await screenshot('deployments-reset');
    // Both keys of pool-a serve again.
    expect(await ask()).toBe('served by a');
    expect(await ask()).toBe('served by a');
    expect(new Set(upstream.received.map((request) => request.key))).toEqual(new Set(poolKeys));
  });

  it('fits a phone-width screen without sideways scrolling, and loaded with no console error', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const view of ['overview', 'keys', 'requests', 'live', 'providers']) {
      await open(view);
      await page.waitForTimeout(300);
      const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
      expect({ view, overflow }).toEqual({ view, overflow: 0 });
    }
    await open('overview');
    await page.waitForTimeout(300);
    await screenshot('narrow');
    await open('providers');
    await page.waitForTimeout(300);
    await screenshot('providers-narrow');
    expect(problems.filter((problem) => !problem.includes('401') && !problem.includes('403'))).toEqual([]);
  });
});
