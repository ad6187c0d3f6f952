// Which folder of src/ may import which: the layering of docs/architecture.md, checked by
// `npm test` (npm run check:layers). A folder may import itself and the folders listed for it;
// anything else fails the run, and so does any import cycle between modules.
//
// From the bottom up: errors and sse import nothing of ours; contract is the vocabulary both sides
// of every boundary speak; providers know only the contract; relay runs generations over
// providers; http and app.ts wire it all; cluster and cli sit on top. client/ is the browser
// library and stands alone.
const layers = {
  errors: [],
  sse: [],
  contract: ['errors'],
  observability: ['errors', 'contract'],
  redis: ['errors', 'contract', 'observability'],
  providers: ['errors', 'contract', 'sse', 'observability'],
  config: ['errors', 'contract', 'observability', 'providers'],
  store: ['errors', 'contract', 'observability', 'config'],
  auth: ['errors', 'contract', 'observability', 'redis', 'config', 'store'],
  limits: ['errors', 'contract', 'observability', 'redis', 'config'],
  hub: ['errors', 'contract', 'observability', 'redis', 'sse'],
  routing: ['errors', 'contract', 'observability', 'redis', 'config', 'providers', 'limits'],
  relay: ['errors', 'contract', 'observability', 'redis', 'sse', 'config', 'providers', 'routing', 'limits', 'store', 'auth'],
  http: ['errors', 'contract', 'observability', 'sse', 'config', 'providers', 'routing', 'relay', 'limits', 'store', 'auth', 'hub'],
  'app.ts': ['errors', 'contract', 'observability', 'config', 'providers', 'routing', 'relay', 'limits', 'store', 'auth', 'hub', 'http'],
  cluster: ['errors', 'contract', 'observability', 'redis', 'config', 'routing', 'relay', 'limits', 'auth', 'hub', 'app.ts'],
  cli: ['errors', 'contract', 'observability', 'redis', 'config', 'providers', 'store', 'auth', 'http', 'app.ts', 'cluster', 'client'],
  client: [],
};

const folder = (name) => (name.endsWith('.ts') ? `^src/${name.replace('.', '\\.')}$` : `^src/${name}/`);

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Modules that import each other in a circle cannot be understood, tested or loaded one at a time.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    ...Object.entries(layers).map(([name, allowed]) => ({
      name: `layer-${name.replace('.ts', '')}`,
      comment: `src/${name} may import only: ${allowed.length > 0 ? allowed.join(', ') : 'nothing else in src/'} (docs/architecture.md, "Layers").`,
      severity: 'error',
      from: { path: folder(name), pathNot: '\\.test\\.ts$' },
      to: {
        path: '^src/',
        pathNot: [folder(name), ...allowed.map(folder)],
      },
    })),
    {
      name: 'client-is-browser-safe',
      comment: 'sluice/client runs in browsers: no Node built-ins outside its tests.',
      severity: 'error',
      from: { path: '^src/client/', pathNot: '\\.test\\.ts$' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'tests-stay-out-of-src',
      comment: 'Source never imports a test file or the test support folder.',
      severity: 'error',
      from: { path: '^src/', pathNot: '\\.test\\.ts$' },
      to: { path: ['\\.test\\.ts$', '^test/'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
