// Config: every problem reported at once with its path, env interpolation, overrides, defaults.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfigText, resolveConfig } from './load.js';

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
    expect(problems(() => parseConfigText(text, {}))).toEqual(['providers.a.apiKey: environment variable KEY is not set; export it or write ${KEY:-default}']);
  });

  it('reports every problem at once, each with its path', () => {
    const found = problems(() =>
      resolveConfig(
        {
          server: { port: 'eighty', extra: true },
          providers: { a: { type: 'openai', baseUrl: 'ftp://x' }, b: { type: 'gemini' } },
          models: { chat: { provider: 'a' } },
        },
        {},
      ),
    );
    expect(found.some((line) => line.startsWith('server.port: expected number'))).toBe(true);
    expect(found.some((line) => line.startsWith('server: unknown setting extra'))).toBe(true);
    expect(found.some((line) => line.startsWith('providers.a.baseUrl: must be an http(s) URL'))).toBe(true);
    expect(found.some((line) => line.startsWith('providers.b.type: type must be one of: openai, mock'))).toBe(true);
    expect(found.length).toBeGreaterThanOrEqual(4);
  });

  it('checks that models and fallbacks point at configured providers', () => {
    const found = problems(() => resolveConfig({ providers: { a: { type: 'mock' } }, models: { chat: { provider: 'b', fallbacks: ['nope', 'a/x'] } } }, {}));
    expect(found).toContain('models.chat.provider: no provider "b"; define it under providers or use one of: a');
    expect(found).toContain('models.chat.fallbacks.0: "nope" is neither a model alias nor provider/model with a configured provider');
  });

  it('reports YAML syntax errors with a line', () => {
    expect(problems(() => parseConfigText('providers:\n  a: [unclosed\n', {}))[0]).toMatch(/^line \d+:/);
  });

  it('applies environment overrides and checks them', () => {
    const config = resolveConfig({}, { SLUICE_HOST: '0.0.0.0', SLUICE_PORT: '9090', SLUICE_LOG_LEVEL: 'debug' });
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.server.port).toBe(9090);
    expect(config.log.level).toBe('debug');
    expect(problems(() => resolveConfig({}, { SLUICE_PORT: 'http' }))).toEqual(['env SLUICE_PORT: "http" is not a port number (0-65535)']);
  });

  it('merges timeouts: defaults, then the top level, then the provider', () => {
    const config = resolveConfig({ timeouts: { idleMs: 5000 }, providers: { a: { type: 'mock', timeouts: { firstByteMs: 100 } } } }, {});
    expect(config.providers['a']?.timeouts).toEqual({ connectMs: 10_000, firstByteMs: 100, idleMs: 5000, totalMs: 0 });
  });

  it('returns a deeply frozen object', () => {
    const config = resolveConfig({}, {});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.server)).toBe(true);
    expect(Object.isFrozen(config.providers['mock']?.timeouts)).toBe(true);
  });
});
