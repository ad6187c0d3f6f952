// GET /, /web/:file, /client/:file and /vendor/:file: the playground page, its script and style,
// the compiled client library and the one package it imports, served as plain files so a browser
// runs them with no build step on the user's side. Every name that can be served is on a fixed
// allow-list; a request's path is only ever looked up in it, never joined onto a directory, so no
// path of the caller's choosing reaches the file system.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SluiceError } from '../../errors/sluice-error.js';
import type { Logger } from '../../observability/logger.js';
import type { RouteSpec } from '../router.js';
import { sendPage, sendPageFile } from '../page-files.js';

export interface PlaygroundOptions {
  /**
   * The package root, holding web/ and dist/client/. Default: three folders above this module,
   * which is the root both from src/http/routes/ (vitest) and from dist/http/routes/ (the build).
   */
  readonly root?: string;
  /** Told once, at the first GET /, when dist/client/ is missing (the page could not load the client). */
  readonly logger?: Pick<Logger, 'warn'>;
}

/** The files of web/ a browser may fetch under /web/ (index.html is served at / only). */
const webFiles = ['playground.js', 'playground.css', 'favicon.svg'] as const;

/** The one bare specifier the compiled client imports; the page's import map points it here. */
const vendorPackage = 'eventsource-parser';

/**
 * The playground's routes, all public: the page itself carries no secret, and the API key the
 * user pastes stays in their browser. Files are read on each request (they are small and sent
 * with `cache-control: no-cache`), so an edited page shows on reload without a restart.
 */
export function createPlaygroundRoutes(options: PlaygroundOptions = {}): RouteSpec[] {
  const root = options.root ?? fileURLToPath(new URL('../../../', import.meta.url));
  const webDirectory = join(root, 'web');
  const clientDirectory = join(root, 'dist', 'client');
  // The lists are read on first use, not here: createApp does no I/O until listen(). Once read
  // they stay fixed, except that a missing build is looked for again (npm run build while running).
  let clientFiles: ReadonlySet<string> | undefined;
  let vendorFiles: ReadonlyMap<string, string> | undefined;
  let warned = false;
  const clientList = (): ReadonlySet<string> => {
    if (clientFiles) return clientFiles;
    const found = listClientFiles(clientDirectory);
    if (found.size > 0) clientFiles = found;
    else if (!warned) {
      warned = true;
      options.logger?.warn({ clientDirectory }, 'playground: the compiled client is missing, so GET / cannot load it; run npm run build');
    }
    return found;
  };
  const vendorList = (): ReadonlyMap<string, string> => (vendorFiles ??= listVendorFiles());

  return [
    {
      method: 'GET',
      pattern: '/',
      options: { access: 'public', name: '/' },
      async handler(_context, _request, response) {
        clientList();
        await sendPage(response, join(webDirectory, 'index.html'));
      },
    },
    {
      method: 'GET',
      pattern: '/web/:file',
      options: { access: 'public', name: '/web/:file' },
      async handler(_context, _request, response, params) {
        const name = allowed(webFiles, params['file']);
        sendPageFile(response, extname(name), await readFile(join(webDirectory, name)));
      },
    },
    {
      method: 'GET',
      pattern: '/client/:file',
      options: { access: 'public', name: '/client/:file' },
      async handler(_context, _request, response, params) {
        const name = allowed([...clientList()], params['file']);
        sendPageFile(response, '.js', await readFile(join(clientDirectory, name)));
      },
    },
    {
      method: 'GET',
      pattern: '/vendor/:file',
      options: { access: 'public', name: '/vendor/:file' },
      async handler(_context, _request, response, params) {
        const path = vendorList().get(allowed([...vendorList().keys()], params['file']));
        if (path === undefined) throw notFound(params['file']);
        sendPageFile(response, '.js', await readFile(path));
      },
    },
  ];
}



function allowed(names: readonly string[], requested: string | undefined): string {
  const name = names.find((candidate) => candidate === requested);
  if (name === undefined) throw notFound(requested);
  return name;
}

function notFound(requested: string | undefined): SluiceError {
  return new SluiceError('not_found', { message: `The playground has no file ${JSON.stringify(requested ?? '')}.` });
}

/** The compiled client's modules (`.js` only: no maps, no declarations), or none before a build. */
function listClientFiles(directory: string): Set<string> {
  if (!existsSync(directory)) return new Set();
  return new Set(
    readdirSync(directory, { withFileTypes: true })
      .filter((entry) => entry.isFile() && entry.name.endsWith('.js'))
      .map((entry) => entry.name),
  );
}

/**
 * The ESM build of eventsource-parser, found the way Node resolves an `import` (its package.json
 * `exports["."].import`), as `eventsource-parser.js`, plus any file beside it that it imports
 * relatively, under its own name, so the browser's relative URLs resolve under /vendor/ too.
 */
function listVendorFiles(): Map<string, string> {
  const packageJsonPath = createRequire(import.meta.url).resolve(`${vendorPackage}/package.json`);
  const manifest = JSON.parse(readFileSync(packageJsonPath, 'utf8')) as { exports?: { '.'?: { import?: string } }; module?: string };
  const entry = manifest.exports?.['.']?.import ?? manifest.module;
  if (entry === undefined) throw new Error(`${vendorPackage}: package.json names no ESM entry (exports["."].import)`);
  const entryPath = join(dirname(packageJsonPath), entry);
  const files = new Map<string, string>([[`${vendorPackage}.js`, entryPath]]);
  const pending = [entryPath];
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    for (const match of readFileSync(path, 'utf8').matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["']\.\/([\w.-]+\.js)["']/g)) {
      const name = match[1] ?? '';
      const imported = join(dirname(path), name);
      if (files.has(name)) continue;
      files.set(name, imported);
      pending.push(imported);
    }
  }
  return files;
}
