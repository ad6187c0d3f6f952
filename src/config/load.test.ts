// Config: every problem reported at once with its path, env interpolation, overrides, defaults.
import { describe, expect, it } from 'vitest';
import { defaults, zeroConfig } from './defaults.js';
import { ConfigError, loadConfig, parseConfigText, resolveConfig } from './load.js';
import { providerDefinitions } from '../providers/definitions.js';

function problems(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('with no file gives the demo gateway on 127.0.0.1:8080', () => {
    const config = loadConfig({ env: {} });
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 8080, heartbeatMs: 15_000 });
    expect(config.providers['mock']?.type).toBe('mock');
    expect(config.defaultModel).toBe('sluice-demo');
  });

  it('names a missing file', () => {
    expect(problems(() => loadConfig({ path: '/nonexistent/sluice.yaml', env: {} }))[0]).toContain('file not found');
  });

  it('interpolates ${VAR} and ${VAR:-default}, and names a missing variable with its path', () => {
    const text = 'providers:\n  a: { type: openai, baseUrl: "${BASE:-https://example.com/v1}", apiKey: "${KEY}" }\n';
    expect(parseConfigText(text, { KEY: 'sk-1' }).providers['a']).toMatchObject({ baseUrl: 'https://example.com/v1', apiKey: 'sk-1' });
    expect(parseConfigText(text, { KEY: 'sk-1', BASE: 'http://10.0.0.1:8000/v1' }).providers['a']).toMatchObject({ baseUrl: 'http://10.0.0.1:8000/v1' });
    expect(problems(() => parseConfigText(text, {}))).toEqual(['providers.a.apiKey: environment variable KEY is not set; export it or write ${KEY:-default}']);
    // An empty variable counts as missing (docs/configuration.md).
    expect(problems(() => parseConfigText(text, { KEY: '' }))).toEqual(['providers.a.apiKey: environment variable KEY is not set; export it or write ${KEY:-default}']);
  });

  it('interpolates inside a longer string, in lists, and leaves other text alone', () => {
    const config = resolveConfig(
      { providers: { a: { type: 'openai', baseUrl: 'https://${HOST}/v1', headers: { 'x-org': 'org-${ORG}', 'x-literal': '$HOME {x}' }, models: ['${MODEL}', 'b'] } } },
      { HOST: 'api.example.com', ORG: '42', MODEL: 'gpt-x' },
    );
    expect(config.providers['a']).toMatchObject({ baseUrl: 'https://api.example.com/v1', headers: { 'x-org': 'org-42', 'x-literal': '$HOME {x}' }, models: ['gpt-x', 'b'] });
  });

  it('reports every problem at once, each with its path', () => {
    const found = problems(() =>
      resolveConfig(
        {
          server: { port: 'eighty', extra: true },
          providers: { openai: { type: 'openai', baseUrl: 'ftp://x' }, b: { type: 'gemini' } },
          models: { x: { provider: 'nope' }, chat: { provider: 'openai' } },
        },
        {},
      ),
    );
    expect(found).toEqual([
      'server.port: expected number, got string "eighty"',
      'server: unknown setting extra; check the spelling against docs/configuration.md',
      'providers.openai.baseUrl: must be an http(s) URL such as https://api.openai.com/v1',
      // Every listed provider type, in the list's order (a new provider needs no change here).
      `providers.b.type: type must be one of: ${providerDefinitions.map((definition) => definition.type).join(', ')}`,
      // A cross-reference the schema cannot see, reported in the same run.
      'models.x.provider: no provider "nope"; define it under providers or use one of: openai, b',
    ]);
  });

  it('reports missing variables together with the other problems', () => {
    const text = ['bogus: 1', 'providers:', '  openai: { type: openai, baseUrl: "${BASE}", apiKey: "${OPENAI_KEY}" }', 'models:', '  x: { provider: other }', ''].join('\n');
    const error = (() => {
      try {
        parseConfigText(text, {}, 'sluice.yaml');
      } catch (thrown) {
        return thrown;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((issue) => issue.path)).toEqual(['providers.openai.baseUrl', 'providers.openai.apiKey', '', 'models.x.provider']);
    expect((error as ConfigError).issues[1]?.message).toContain('OPENAI_KEY');
    expect((error as ConfigError).message).toMatch(/^sluice\.yaml: 4 problems\n/);
    expect((error as ConfigError).message).toContain('  - (top level): unknown setting bogus');
  });

  it('names an unknown key wherever it is', () => {
    expect(problems(() => resolveConfig({ providers: { a: { type: 'openai', baseUrl: 'https://x', apikey: 'k' } } }, {}))).toEqual(['providers.a: unknown setting apikey; did you mean apiKey?']);
    expect(problems(() => resolveConfig({ timeouts: { idleMS: 1 } }, {}))).toEqual(['timeouts: unknown setting idleMS; did you mean idleMs?']);
    // Nothing near it anywhere in the schema: where to look it up.
    expect(problems(() => resolveConfig({ timeouts: { colour: 1 } }, {}))).toEqual(['timeouts: unknown setting colour; check the spelling against docs/configuration.md']);
  });

  it('checks that models and fallbacks point at configured providers', () => {
    const found = problems(() => resolveConfig({ providers: { a: { type: 'mock' } }, models: { chat: { provider: 'b', fallbacks: ['nope', 'a/x'] } } }, {}));
    expect(found).toContain('models.chat.provider: no provider "b"; define it under providers or use one of: a');
    expect(found).toContain('models.chat.fallbacks.0: "nope" is neither a model alias nor provider/model with a configured provider');
  });

  it('reports YAML syntax errors with a line and a column', () => {
    expect(problems(() => parseConfigText('providers:\n  a: [unclosed\n', {}))[0]).toMatch(/^line \d+, column \d+: /);
    // The position is the mistake's own, not line 0: the second `port` of server, 4th line, 3rd column.
    expect(problems(() => parseConfigText('log: { level: info }\nserver:\n  port: 8080\n  port: 9090\n', {}))).toEqual(['line 4, column 3: Map keys must be unique; fix the YAML syntax']);
    expect(problems(() => parseConfigText('server:\n  host: "127.0.0.1\n', {}))[0]).toMatch(/^line 3, column 1: Missing closing "quote; fix the YAML syntax$/);
  });

  it('applies environment overrides and checks them', () => {
    const config = resolveConfig({ server: { host: 'localhost', port: 1 }, log: { level: 'warn' } }, { SLUICE_HOST: '0.0.0.0', SLUICE_PORT: '9090', SLUICE_LOG_LEVEL: 'debug' });
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.server.port).toBe(9090);
    expect(config.log.level).toBe('debug');
    expect(resolveConfig({}, { PORT: '3000' }).server.port).toBe(3000);
    expect(resolveConfig({}, { SLUICE_PORT: '0' }).server.port).toBe(0);
  });

  it.each(['http', '-1', '65536', '80.5', '0x50', '1e3', ' 80'])('refuses SLUICE_PORT=%j', (port) => {
    expect(problems(() => resolveConfig({}, { SLUICE_PORT: port }))).toEqual([`env SLUICE_PORT: ${JSON.stringify(port)} is not a port number (0-65535)`]);
  });

  it('refuses an unknown SLUICE_LOG_LEVEL, together with a bad port', () => {
    expect(problems(() => resolveConfig({}, { SLUICE_LOG_LEVEL: 'verbose', SLUICE_PORT: 'x' }))).toEqual([
      'env SLUICE_PORT: "x" is not a port number (0-65535)',
      'env SLUICE_LOG_LEVEL: "verbose" is not a level; use fatal, error, warn, info, debug, trace or silent',
    ]);
  });

  it('merges timeouts: defaults, then the top level, then the provider', () => {
    const config = resolveConfig({ timeouts: { idleMs: 5000 }, providers: { a: { type: 'mock', timeouts: { firstByteMs: 100 } } } }, {});
    expect(config.providers['a']?.timeouts).toEqual({ connectMs: 10_000, firstByteMs: 100, idleMs: 5000, totalMs: 0 });
  });

  it('returns a deeply frozen object', () => {
    const config = resolveConfig({ providers: { a: { type: 'openai', baseUrl: 'https://x', headers: { h: 'v' }, models: ['m'] } }, models: { chat: { provider: 'a', fallbacks: ['a/n'] } } }, {});
    const provider = config.providers['a'];
    for (const value of [config, config.server, config.log, config.providers, config.models, config.models['chat'], config.models['chat']?.fallbacks, provider, provider?.timeouts, provider?.models, config.outboundProxy]) {
      expect(Object.isFrozen(value)).toBe(true);
    }
    expect(() => {
      (config.server as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => (config.models['chat']?.fallbacks as string[]).push('x')).toThrow(TypeError);
  });

  it('with no config gives the mock provider and the model sluice-demo', () => {
    const config = resolveConfig(zeroConfig, {});
    expect(Object.keys(config.providers)).toEqual(['mock']);
    expect(config.models).toEqual({ 'sluice-demo': { provider: 'mock', model: 'sluice-demo', strategy: 'weighted', deployments: [{ id: 'mock/sluice-demo', provider: 'mock', model: 'sluice-demo', weight: 1, priority: 0 }], fallbacks: [] } });
    expect(config.defaultModel).toBe('sluice-demo');
    // Resolving must not freeze or change the shared defaults it started from.
    expect(Object.isFrozen(zeroConfig.providers)).toBe(false);
    expect(defaults.server.port).toBe(8080);
  });
});

describe('a file without providers', () => {
  it('gets the whole demo gateway, model alias and default included', () => {
    const config = parseConfigText('server: { port: 9000 }\n', {});
    expect(config.server.port).toBe(9000);
    expect(config.models['sluice-demo']).toEqual({ provider: 'mock', model: 'sluice-demo', strategy: 'weighted', deployments: [{ id: 'mock/sluice-demo', provider: 'mock', model: 'sluice-demo', weight: 1, priority: 0 }], fallbacks: [] });
    expect(config.defaultModel).toBe('sluice-demo');
  });
});

describe('auth, store and limits settings', () => {
  it('default to API keys, a SQLite file and no limits', () => {
    const config = resolveConfig({}, {});
    expect(config.auth).toEqual({ mode: 'keys', ticketTtlMs: 60_000 });
    expect(config.store.url).toBe('sqlite:./data/sluice.db');
    expect(config.limits).toEqual({ perUser: {}, users: {} });
  });

  it('refuses auth mode none unless the gateway listens on a loopback address', () => {
    expect(resolveConfig({ auth: { mode: 'none' }, server: { host: '127.0.0.1' } }, {}).auth.mode).toBe('none');
    expect(resolveConfig({ auth: { mode: 'none' }, server: { host: '::1' } }, {}).auth.mode).toBe('none');
    expect(problems(() => resolveConfig({ auth: { mode: 'none' }, server: { host: '0.0.0.0' } }, {}))).toEqual([
      'auth.mode: "none" lets anyone call the gateway, so it is refused on 0.0.0.0; bind server.host to 127.0.0.1 or use keys',
    ]);
    // The environment override counts too: SLUICE_HOST=0.0.0.0 with mode none is refused.
    expect(problems(() => resolveConfig({ auth: { mode: 'none' } }, { SLUICE_HOST: '0.0.0.0' }))[0]).toMatch(/^auth\.mode: /);
  });

  it('needs exactly one of a JWT secret and a JWKS URL for modes jwt and both, and fills the claim defaults', () => {
    expect(problems(() => resolveConfig({ auth: { mode: 'jwt' } }, {}))[0]).toMatch(/^auth\.jwt: mode "jwt" needs exactly one of/);
    expect(problems(() => resolveConfig({ auth: { mode: 'both', jwt: { secret: 's'.repeat(32), jwksUrl: 'https://idp.example.com/jwks' } } }, {}))[0]).toMatch(/^auth\.jwt: /);
    expect(problems(() => resolveConfig({ auth: { mode: 'jwt', jwt: { secret: 'short' } } }, {}))).toEqual(['auth.jwt.secret: an HS256 secret needs at least 32 characters (256 bits)']);
    expect(problems(() => resolveConfig({ auth: { mode: 'keys', jwt: { secret: 's'.repeat(32) } } }, {}))[0]).toMatch(/^auth\.jwt: JWT settings are ignored in mode "keys"/);
    expect(resolveConfig({ auth: { mode: 'jwt', jwt: { jwksUrl: 'https://idp.example.com/jwks', audience: 'sluice' } } }, {}).auth.jwt).toEqual({
      jwksUrl: 'https://idp.example.com/jwks',
      audience: 'sluice',
      userClaim: 'sub',
      roleClaim: 'role',
      modelsClaim: 'models',
      defaultRole: 'user',
      clockToleranceSeconds: 5,
    });
    expect(resolveConfig({ auth: { mode: 'jwt', jwt: { secret: 's'.repeat(32), modelsClaim: 'https://sluice.example/models' } } }, {}).auth.jwt?.modelsClaim).toBe('https://sluice.example/models');
    expect(problems(() => resolveConfig({ auth: { mode: 'jwt', jwt: { secret: 's'.repeat(32), modelsClaim: '' } } }, {}))[0]).toMatch(/^auth\.jwt\.modelsClaim: /);
  });

  it('takes SLUICE_STORE_URL and SLUICE_ADMIN_KEY from the environment, and checks the store URL', () => {
    const config = resolveConfig({ store: { url: 'sqlite::memory:' } }, { SLUICE_STORE_URL: 'postgres://sluice@db:5432/sluice', SLUICE_ADMIN_KEY: 'sk-sluice-x' });
    expect(config.store.url).toBe('postgres://sluice@db:5432/sluice');
    expect(config.auth.adminKey).toBe('sk-sluice-x');
    expect(problems(() => resolveConfig({ store: { url: 'mysql://db' } }, {}))[0]).toMatch(/^store\.url: use sqlite:/);
    expect(problems(() => resolveConfig({}, { SLUICE_STORE_URL: 'redis://x' }))[0]).toMatch(/^env SLUICE_STORE_URL: /);
  });

  it('validates limits by path and drops unset ones', () => {
    expect(problems(() => resolveConfig({ limits: { perUser: { requestsPerMinute: 0 } } }, {}))[0]).toMatch(/^limits\.perUser\.requestsPerMinute: /);
    expect(problems(() => resolveConfig({ limits: { users: { 'bad user': { dailyTokens: 5 } } } }, {}))[0]).toMatch(/^limits\.users\.bad user: /);
    expect(resolveConfig({ limits: { perUser: { dailyTokens: 5 } } }, {}).limits.perUser).toEqual({ dailyTokens: 5 });
  });
});

describe('cluster settings', () => {
  it('are off without a Redis URL, and on with cluster.redisUrl or SLUICE_REDIS_URL', () => {
    expect(resolveConfig({}, {}).cluster).toBeUndefined();
    expect(resolveConfig({ cluster: { redisUrl: 'redis://cache:6379', nodeId: 'node-1' } }, {}).cluster).toEqual({ redis: { url: 'redis://cache:6379' }, nodeId: 'node-1', keyPrefix: 'sluice:', presenceTtlMs: 15_000, logFlushMs: 50, recentHealthMs: 1000 });
    const fromEnv = resolveConfig({}, { SLUICE_REDIS_URL: 'redis://127.0.0.1:6379', SLUICE_NODE_ID: 'n2' }).cluster;
    expect(fromEnv).toEqual({ redis: { url: 'redis://127.0.0.1:6379' }, nodeId: 'n2', keyPrefix: 'sluice:', presenceTtlMs: 15_000, logFlushMs: 50, recentHealthMs: 1000 });
  });

  it('a pool of one goes on its node\'s healthy read for cluster.recentHealthMs (1000 by default, 0 to 10000)', () => {
    expect(resolveConfig({ cluster: { redisUrl: 'redis://cache:6379', recentHealthMs: 0 } }, {}).cluster?.recentHealthMs).toBe(0);
    expect(problems(() => resolveConfig({ cluster: { redisUrl: 'redis://cache:6379', recentHealthMs: 60_000 } }, {}))[0]).toMatch(/^cluster\.recentHealthMs: /);
    expect(problems(() => resolveConfig({ cluster: { recentHealthMs: 10 } }, {}))).toEqual(['cluster.redisUrl: cluster settings need cluster.redisUrl or cluster.redisClusterNodes (or SLUICE_REDIS_URL / SLUICE_REDIS_CLUSTER_NODES)']);
  });

  it('gather a generation\'s events for cluster.logFlushMs before copying them (50 by default, 0 to 1000)', () => {
    expect(resolveConfig({ cluster: { redisUrl: 'redis://cache:6379', logFlushMs: 0 } }, {}).cluster?.logFlushMs).toBe(0);
    expect(problems(() => resolveConfig({ cluster: { redisUrl: 'redis://cache:6379', logFlushMs: 5000 } }, {}))[0]).toMatch(/^cluster\.logFlushMs: /);
    expect(problems(() => resolveConfig({ cluster: { logFlushMs: 10 } }, {}))).toEqual(['cluster.redisUrl: cluster settings need cluster.redisUrl or cluster.redisClusterNodes (or SLUICE_REDIS_URL / SLUICE_REDIS_CLUSTER_NODES)']);
  });

  it('take a Redis Cluster\'s seed nodes from cluster.redisClusterNodes or SLUICE_REDIS_CLUSTER_NODES (comma-separated)', () => {
    const fromFile = resolveConfig({ cluster: { redisClusterNodes: ['redis://10.0.0.1:6379', 'redis://10.0.0.2:6379'], nodeId: 'n1' } }, {}).cluster;
    expect(fromFile?.redis).toEqual({ clusterNodes: ['redis://10.0.0.1:6379', 'redis://10.0.0.2:6379'] });
    const fromEnv = resolveConfig({}, { SLUICE_REDIS_CLUSTER_NODES: 'redis://a:7101, redis://b:7102' }).cluster;
    expect(fromEnv?.redis).toEqual({ clusterNodes: ['redis://a:7101', 'redis://b:7102'] });
  });

  it('name what is wrong', () => {
    expect(problems(() => resolveConfig({ cluster: { redisUrl: 'http://cache' } }, {}))[0]).toMatch(/^cluster\.redisUrl: must be a redis:\/\//);
    expect(problems(() => resolveConfig({ cluster: { nodeId: 'n1' } }, {}))).toEqual(['cluster.redisUrl: cluster settings need cluster.redisUrl or cluster.redisClusterNodes (or SLUICE_REDIS_URL / SLUICE_REDIS_CLUSTER_NODES)']);
    expect(problems(() => resolveConfig({ cluster: { redisUrl: 'redis://a:6379', redisClusterNodes: ['redis://b:6379'] } }, {}))).toEqual([
      'cluster.redisClusterNodes: set either cluster.redisUrl (one Redis) or cluster.redisClusterNodes (a Redis Cluster), not both; SLUICE_REDIS_URL and SLUICE_REDIS_CLUSTER_NODES count as the settings they override',
    ]);
    expect(problems(() => resolveConfig({}, { SLUICE_REDIS_URL: 'redis://a:6379', SLUICE_REDIS_CLUSTER_NODES: 'redis://b:6379' }))[0]).toMatch(/^cluster\.redisClusterNodes: set either/);
    expect(problems(() => resolveConfig({ cluster: { redisClusterNodes: [] } }, {}))[0]).toMatch(/^cluster\.redisClusterNodes: list at least one node/);
    expect(problems(() => resolveConfig({ cluster: { redisClusterNodes: ['cache:7000'] } }, {}))[0]).toMatch(/^cluster\.redisClusterNodes\.0: must be a redis:\/\//);
    expect(problems(() => resolveConfig({}, { SLUICE_REDIS_CLUSTER_NODES: 'redis://a:1,cache:2' }))).toEqual(['env SLUICE_REDIS_CLUSTER_NODES: "cache:2" is not a redis:// URL; list the nodes comma-separated, such as redis://10.0.0.1:6379,redis://10.0.0.2:6379']);
    expect(problems(() => resolveConfig({}, { SLUICE_REDIS_URL: 'cache:6379' }))).toEqual(['env SLUICE_REDIS_URL: "cache:6379" is not a redis:// URL']);
  });
});
