// Headless Chromium for the browser tests (Debian's package, driven by playwright-core): where it
// is, the flags it runs with here, and the guard that makes a CI machine without it fail instead
// of skipping the file's tests.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { describe, it } from 'vitest';

export const chromiumPath = '/usr/bin/chromium';
export const hasChromium = existsSync(chromiumPath);

/** Launches headless Chromium with the flags this machine needs (no sandbox, no background traffic). */
export function launchChromium(executablePath: string = chromiumPath, timeout?: number): Promise<Browser> {
  return chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    ...(timeout !== undefined ? { timeout } : {}),
  });
}

/**
 * Without Chromium: on CI (`CI` set) one failing test says to install it; elsewhere a warning
 * names the file whose tests are skipped. Call at the top of a browser test file.
 */
export function requireChromiumOnCi(file: string, what: string): void {
  if (hasChromium) return;
  if (!process.env['CI']) {
    console.warn(`${file} skipped: no Chromium at ${chromiumPath} (install the Debian package "chromium").`);
    return;
  }
  describe(`${what} on CI`, () => {
    it('needs Chromium', () => {
      throw new Error(`no Chromium at ${chromiumPath}: install the Debian package "chromium" (apt-get install chromium) on the CI image`);
    });
  });
}
