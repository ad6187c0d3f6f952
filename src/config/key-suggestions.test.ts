// An unknown key is answered with the key it is probably a typo of, or where it belongs when it is
// a real setting at the wrong level, all read from the schema; and one mistake is one line.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, resolveConfig } from './load.js';
import { describeSchemaIssues } from './issue-messages.js';
import { closestKeys } from './key-suggestions.js';

function problems(document: unknown): string[] {
  try {
    resolveConfig(document, {});
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((issue) => `${issue.path || '(top level)'}: ${issue.message}`);
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('an unknown key that is a typo', () => {
  it('is matched against the keys allowed at its path, ignoring case', () => {
    expect(problems({ providers: { a: { type: 'openai', baseUrl: 'https://x', apikey: 'k' } } })).toEqual(['providers.a: unknown setting apikey; did you mean apiKey?']);
    expect(problems({ server: { PORT: 8080 } })).toEqual(['server: unknown setting PORT; did you mean port?']);
  });

  it('is matched within a small edit distance: a missing, extra, wrong or swapped letter', () => {
    expect(problems({ server: { hearbeatMs: 1 } })).toEqual(['server: unknown setting hearbeatMs; did you mean heartbeatMs?']);
    expect(problems({ tiemouts: { idleMs: 1 } })).toEqual(['(top level): unknown setting tiemouts; did you mean timeouts?']);
    expect(problems({ generations: { retentionMss: 1 } })).toEqual(['generations: unknown setting retentionMss; did you mean retentionMs?']);
  });

  it('is not matched to something too far away', () => {
    expect(problems({ server: { colour: 'blue' } })).toEqual(['server: unknown setting colour; check the spelling against docs/configuration.md']);
    expect(closestKeys('ab', ['ak', 'sk'])).toEqual([]);
  });

  it('reads the allowed keys from the schema at that path, not from a list', () => {
    const schema = z.strictObject({ paint: z.strictObject({ colour: z.string().optional(), gloss: z.boolean().optional() }).optional() });
    const document = { paint: { color: 'red' } };
    const parsed = schema.safeParse(document, { reportInput: true });
    expect(parsed.success).toBe(false);
    expect(describeSchemaIssues(parsed.error?.issues ?? [], schema, document)).toEqual([{ path: 'paint', message: 'unknown setting color; did you mean colour?' }]);
  });
});

describe('a real setting written at the wrong level', () => {
  it('says where it belongs, with every place the schema has it', () => {
    expect(problems({ limits: { requestsPerMinute: 60 } })).toEqual([
      'limits: unknown setting requestsPerMinute; it belongs under limits.perUser.requestsPerMinute (or limits.users.<id>.requestsPerMinute, or providers.<id>.limits.requestsPerMinute)',
    ]);
    expect(problems({ server: { redisUrl: 'redis://127.0.0.1:6379' } })).toEqual(['server: unknown setting redisUrl; it belongs under cluster.redisUrl']);
    expect(problems({ port: 8080 })).toEqual(['(top level): unknown setting port; it belongs under server.port']);
    expect(problems({ apiKey: 'sk-x' })).toEqual(['(top level): unknown setting apiKey; it belongs under providers.<id>.apiKey']);
  });

  it('names the provider types that have it when another type was chosen', () => {
    expect(problems({ providers: { a: { type: 'openai', baseUrl: 'https://x', deployments: { 'gpt-4o': 'prod' } } } })).toEqual([
      'providers.a: unknown setting deployments for type openai; it is a setting of type azure',
    ]);
  });
});

describe('one mistake', () => {
  it('gives one line when the misspelt key was required (not "required" as well)', () => {
    expect(problems({ providers: { a: { type: 'openai', baseurl: 'https://api.openai.com/v1' } } })).toEqual(['providers.a: unknown setting baseurl; did you mean baseUrl?']);
    expect(problems({ providers: { a: { type: 'signed-http', url: 'https://x', auth: { scheme: 'header', nam: 'x-key', key: 'k' } } } })).toEqual([
      'providers.a.auth: unknown setting nam; did you mean name?',
    ]);
  });

  it('gives one line when the misspelt key is the one that picks a member of a union (type, scheme)', () => {
    expect(problems({ providers: { a: { tpye: 'openai', baseUrl: 'https://x' } } })).toEqual(['providers.a: unknown setting tpye; did you mean type?']);
    expect(problems({ providers: { a: { type: 'signed-http', url: 'https://x', auth: { shceme: 'bearer', key: 'k' } } } })).toEqual([
      'providers.a.auth: unknown setting shceme; did you mean scheme?',
    ]);
  });

  it('inside a plain union gives the lines of the nearest member only, once', () => {
    // The shape of a model route that is either one provider or a pool of deployments.
    const route = z.union([z.strictObject({ provider: z.string(), model: z.string().optional() }), z.strictObject({ deployments: z.array(z.strictObject({ provider: z.string() })) })]);
    const schema = z.strictObject({ models: z.record(z.string(), route) });
    const document = { models: { chat: { provder: 'openai', model: 'gpt-4o' } } };
    const parsed = schema.safeParse(document, { reportInput: true });
    expect(parsed.error?.issues.length).toBe(1); // one invalid_union holding four issues
    expect(describeSchemaIssues(parsed.error?.issues ?? [], schema, document)).toEqual([{ path: 'models.chat', message: 'unknown setting provder; did you mean provider?' }]);
  });

  it('gives one line per unknown key, each with its own advice', () => {
    expect(problems({ server: { prot: 1, redisUrl: 'redis://x' } })).toEqual([
      'server: unknown setting prot; did you mean port?',
      'server: unknown setting redisUrl; it belongs under cluster.redisUrl',
    ]);
  });
});
