// What the gateway's own pages (the playground at /, the console at /admin) are served with: one
// content type per extension, no caching, no sniffing, and a strict Content-Security-Policy.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';

const contentTypes: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml; charset=utf-8',
};

/** Answers 200 with an HTML page read from `path`, under the policy its import map allows. */
export async function sendPage(response: ServerResponse, path: string): Promise<void> {
  const html = await readFile(path, 'utf8');
  sendPageFile(response, '.html', html, { 'content-security-policy': pageContentSecurityPolicy(html) });
}

/** Answers 200 with a page file whose type its extension gives. */
export function sendPageFile(response: ServerResponse, extension: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  response.writeHead(200, {
    ...headers,
    'content-type': contentTypes[extension] ?? 'application/octet-stream',
    'content-length': Buffer.byteLength(body).toString(),
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  response.end(body);
}

/**
 * The page's policy: nothing from anywhere but this gateway, no inline script except the import
 * map (allowed by its hash, so editing it cannot silently open the page to inline scripts), and
 * Trusted Types required, so even a mistaken `innerHTML = modelText` throws instead of rendering.
 */
export function pageContentSecurityPolicy(html: string): string {
  const hashes = [...html.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)].map((match) => `'sha256-${createHash('sha256').update(match[1] ?? '').digest('base64')}'`);
  return [
    "default-src 'none'",
    `script-src 'self' ${hashes.join(' ')}`.trim(),
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
  ].join('; ');
}
