// References between settings (routes, pool deployments, fallbacks, defaultModel) are reported in
// the same run as the schema's problems: every problem at once, not one kind per run.
import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from './load.js';
import { crossCheckIssues } from './cross-checks.js';

function problems(document: unknown): string[] {
  try {
    resolveConfig(document, {});
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw error;
  }
  throw new Error('expected a ConfigError');
}

const nothing = 'is neither a model alias nor provider/model with a configured provider';

describe('references between settings', () => {
  it('are reported together with the schema\'s problems: routes, fallbacks and defaultModel', () => {
    expect(
      problems({
        server: { port: 'eighty' },
        providers: { openai: { type: 'openai', baseUrl: 'https://api.openai.com/v1' } },
        models: { chat: { provider: 'anthropic', fallbacks: ['backup', 'openai/gpt-4o'] } },
        defaultModel: 'fast',
      }),
    ).toEqual([
      'server.port: expected number, got string "eighty"',
      'models.chat.provider: no provider "anthropic"; define it under providers or use one of: openai',
      `models.chat.fallbacks.0: "backup" ${nothing}`,
      `defaultModel: "fast" ${nothing}`,
    ]);
  });

  it('are still reported when the schema has nothing to say', () => {
    expect(problems({ providers: { a: { type: 'mock' } }, models: { chat: { provider: 'a', fallbacks: ['a/x', 'b/x'] } }, defaultModel: 'b/y' })).toEqual([
      `models.chat.fallbacks.1: "b/x" ${nothing}`,
      `defaultModel: "b/y" ${nothing}`,
    ]);
  });

  it('suggest the name nearest to a misspelt one', () => {
    expect(problems({ providers: { openai: { type: 'mock' } }, models: { chat: { provider: 'opnai', fallbacks: ['caht'] } }, defaultModel: 'chta' })).toEqual([
      'models.chat.provider: no provider "opnai"; did you mean openai?',
      `models.chat.fallbacks.0: "caht" ${nothing}; did you mean chat?`,
      `defaultModel: "chta" ${nothing}; did you mean chat?`,
    ]);
  });

  it('check against the demo provider and model when the file configures no providers', () => {
    expect(resolveConfig({ defaultModel: 'mock/anything' }, {}).defaultModel).toBe('mock/anything');
    expect(problems({ models: { chat: { provider: 'openai' } } })).toEqual(['models.chat.provider: no provider "openai"; define it under providers or use one of: mock']);
  });

  it('read the providers of a pool\'s deployments', () => {
    const document = { providers: { east: { type: 'mock' }, west: { type: 'mock' } }, models: { chat: { deployments: [{ provider: 'east' }, { provider: 'north', weight: 2 }, { provider: 5 }] } } };
    expect(crossCheckIssues(document)).toEqual([{ path: 'models.chat.deployments.1.provider', message: 'no provider "north"; define it under providers or use one of: east, west' }]);
  });

  it('leave values the schema refuses (not text, empty, missing) to the schema', () => {
    expect(crossCheckIssues({ providers: { a: { type: 'mock' } }, models: { chat: { provider: 5, fallbacks: ['', 7] }, other: 'x' }, defaultModel: '' })).toEqual([]);
    expect(crossCheckIssues({ providers: 'none', models: { chat: { provider: 'x' } } })).toEqual([]);
  });
});
