// GET /admin, /admin/assets/:file and /admin/vendor/:file: the operator console (docs/console.md),
// served as plain files like the playground: the page, its modules and style from web/console/,
// and preact, htm and uPlot from node_modules as the ES modules their packages ship, so the
// browser runs them with no bundler. The page and its files carry no secret (the admin key stays
// in the operator's browser), so these routes are public; every JSON route the page calls needs
// an admin credential. Every servable name is on a fixed list; a request's path is only looked up
// in it, never joined onto a directory.
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SluiceError } from '../../errors/sluice-error.js';
import type { RouteSpec } from '../router.js';
import { sendPage, sendPageFile } from '../page-files.js';

/** The files of web/console/ served under /admin/assets/ (index.html is served at /admin only). */
const assetFiles = ['console.js', 'views.js', 'api.js', 'charts.js', 'console.css'] as const;

/**
 * The vendored modules by the name the page's import map gives them: the package, and the file
 * inside it that is the browser ES module build (checked for each pinned version in package.json).
 */
const vendorFiles: Readonly<Record<string, { readonly packageName: string; readonly path: string }>> = {
  'preact.js': { packageName: 'preact', path: 'dist/preact.mjs' },
  'preact-hooks.js': { packageName: 'preact', path: 'hooks/dist/hooks.mjs' },
  'htm.js': { packageName: 'htm', path: 'dist/htm.mjs' },
  'uplot.js': { packageName: 'uplot', path: 'dist/uPlot.esm.js' },
  'uplot.css': { packageName: 'uplot', path: 'dist/uPlot.min.css' },
};

export interface AdminConsoleOptions {
  /** The package root, holding web/console/; default three folders above this module (as for the playground). */
  readonly root?: string;
}

export function createAdminConsoleRoutes(options: AdminConsoleOptions = {}): RouteSpec[] {
  const root = options.root ?? fileURLToPath(new URL('../../../', import.meta.url));
  const consoleDirectory = join(root, 'web', 'console');
  return [
    {
      method: 'GET',
      pattern: '/admin',
      options: { access: 'public', name: '/admin' },
      async handler(_context, _request, response) {
        await sendPage(response, join(consoleDirectory, 'index.html'));
      },
    },
    {
      method: 'GET',
      pattern: '/admin/assets/:file',
      options: { access: 'public', name: '/admin/assets/:file' },
      async handler(_context, _request, response, params) {
        const name = assetFiles.find((candidate) => candidate === params['file']);
        if (name === undefined) throw notFound(params['file']);
        sendPageFile(response, extname(name), await readFile(join(consoleDirectory, name)));
      },
    },
    {
      method: 'GET',
      pattern: '/admin/vendor/:file',
      options: { access: 'public', name: '/admin/vendor/:file' },
      async handler(_context, _request, response, params) {
        const requested = params['file'] ?? '';
        const file = Object.hasOwn(vendorFiles, requested) ? vendorFiles[requested] : undefined;
        if (file === undefined) throw notFound(requested);
        sendPageFile(response, extname(requested), await readFile(join(packageRoot(file.packageName), file.path)));
      },
    },
  ];
}

const require = createRequire(import.meta.url);

/**
 * The folder of an installed package. Resolved from its main entry and walked up to its
 * package.json, because htm's `exports` hides `htm/package.json` from require.resolve.
 */
function packageRoot(packageName: string): string {
  let directory = dirname(require.resolve(packageName));
  for (;;) {
    const manifest = join(directory, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === packageName) return directory;
    const parent = dirname(directory);
    if (parent === directory) throw new Error(`console: cannot find the folder of the package ${packageName}`);
    directory = parent;
  }
}


function notFound(requested: string | undefined): SluiceError {
  return new SluiceError('not_found', { message: `The console has no file ${JSON.stringify(requested ?? '')}.` });
}
