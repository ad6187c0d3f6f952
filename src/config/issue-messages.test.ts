// The schema's problems are told in Sluice's words, not zod's, and counted in correct English.
import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from './load.js';
import { plural } from './issue-messages.js';

function problems(document: unknown): string[] {
  try {
    resolveConfig(document, {});
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('schema problems in the project\'s words', () => {
  it('numbers: whole, above, at least, at most', () => {
    expect(problems({ server: { heartbeatMs: 0, drainTimeoutMs: -1, bodyLimitBytes: 1.5 } })).toEqual([
      'server.bodyLimitBytes: must be a whole number, got number 1.5',
      'server.heartbeatMs: must be a whole number above 0',
      'server.drainTimeoutMs: must be a whole number, 0 or more',
    ]);
    expect(problems({ server: { port: 70000 } })).toEqual(['server.port: must be a whole number of at most 65535']);
    expect(problems({ cluster: { redisUrl: 'redis://x', presenceTtlMs: 5 } })).toEqual(['cluster.presenceTtlMs: must be a whole number of at least 1000']);
  });

  it('types: text, number, true/false, a list, a mapping, with the value that was there', () => {
    expect(problems({ models: { a: { provider: 5 } } })).toEqual(['models.a.provider: expected text, got number 5']);
    expect(problems({ websocket: { cancelChatsOnClose: 'yes' } })).toEqual(['websocket.cancelChatsOnClose: expected true/false, got string "yes"']);
    expect(problems({ providers: { a: { type: 'openai', baseUrl: 'https://x', models: 'gpt-4o' } } })).toEqual(['providers.a.models: expected a list, got string "gpt-4o"']);
    expect(problems({ models: { a: 'openai' } })).toEqual(['models.a: expected a mapping, got string "openai"']);
    expect(problems({ providers: { a: { type: 'signed-http', url: 'https://x', auth: { scheme: 'none' }, endWhen: { path: 'done', equals: [1] } } } })).toEqual([
      'providers.a.endWhen.equals: expected text, number or true/false, got a list',
    ]);
  });

  it('required settings and empty text', () => {
    expect(problems({ providers: { a: { type: 'signed-http', url: 'https://x' } } })).toEqual(['providers.a.auth: required (a mapping)']);
    expect(problems({ models: { a: { provider: '' } } })).toEqual(['models.a.provider: must not be empty']);
    expect(problems({ providers: { a: { model: 'x' } } })[0]).toBe('providers.a.type: required; one of: openai, azure, anthropic, spark, qianfan, signed-http, mock');
  });

  it('choices list the allowed values and the one given', () => {
    expect(problems({ log: { level: 'verbose' } })).toEqual(['log.level: must be one of: fatal, error, warn, info, debug, trace, silent (got string "verbose")']);
    expect(problems({ providers: { a: { type: 'signed-http', url: 'https://x', auth: { scheme: 'basic' } } } })).toEqual([
      'providers.a.auth.scheme: must be one of: none, bearer, header, ak-sk-sha256 (got string "basic")',
    ]);
  });

  it('keeps the messages the schema wrote itself (URLs, ids, secrets)', () => {
    expect(problems({ cluster: { redisUrl: 'http://cache' } })).toEqual(['cluster.redisUrl: must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379']);
    expect(problems({ providers: { a: { type: 'openai' } } })).toEqual(['providers.a.baseUrl: required; must be an http(s) URL such as https://api.openai.com/v1']);
    expect(problems({ providers: { 'My Provider': { type: 'mock' } } })).toEqual(['providers.My Provider: "My Provider" is not allowed as a name here: provider ids use a-z, 0-9, - and _']);
  });

  it('never shows the validation library\'s own phrasing', () => {
    const found = problems({
      server: { port: 'x', heartbeatMs: 0, host: '' },
      log: { level: 1 },
      auth: { mode: 'open', ticketTtlMs: -5 },
      providers: { a: { type: 'openai', baseUrl: 'https://x', maxConnections: 1.5, headers: { h: 1 } }, b: { type: 'signed-http', url: 'https://x', auth: { scheme: 'x' } } },
      limits: { perUser: { dailyTokens: 0 }, users: { 'a b': {} } },
    });
    expect(found.length).toBeGreaterThanOrEqual(9);
    for (const line of found) expect(line).not.toMatch(/Invalid input|Invalid option|Too small|Too big|received|expected number to be|Unrecognized key|Invalid key in record/);
  });
});

describe('counts', () => {
  it('use the singular for one and the plural otherwise', () => {
    expect(plural(1, 'problem')).toBe('1 problem');
    expect(plural(2, 'problem')).toBe('2 problems');
    expect(plural(0, 'provider')).toBe('0 providers');
    expect(plural(1, 'model alias', 'model aliases')).toBe('1 model alias');
    expect(plural(3, 'model alias', 'model aliases')).toBe('3 model aliases');
  });

  it('in the summary line: 1 problem, 2 problems', () => {
    const message = (document: unknown): string => {
      try {
        resolveConfig(document, {}, 'sluice.yaml');
      } catch (error) {
        if (error instanceof ConfigError) return error.message.split('\n')[0] ?? '';
      }
      return '';
    };
    expect(message({ server: { port: 'x' } })).toBe('sluice.yaml: 1 problem');
    expect(message({ server: { port: 'x', host: 5 } })).toBe('sluice.yaml: 2 problems');
  });
});
