// What a model allowlist lets through: exact names, `*` globs over aliases and provider/model
// names, whole-name matching only, an absent or empty list allowing everything; the refusal that
// names the model and the credential; and what a valid list is.
import { describe, expect, it } from 'vitest';
import type { Principal } from '../contract/principal.js';
import { isModelAllowed, matchesModelPattern, modelPatternsSchema, modelRefusal } from './model-allowlist.js';

describe('matchesModelPattern', () => {
  it('matches a name without a star only to itself, case included', () => {
    expect(matchesModelPattern('chat', 'chat')).toBe(true);
    expect(matchesModelPattern('chat', 'Chat')).toBe(false);
    expect(matchesModelPattern('chat', 'chatty')).toBe(false);
    expect(matchesModelPattern('chat', 'cha')).toBe(false);
    expect(matchesModelPattern('chat', '')).toBe(false);
  });

  it('matches the whole name: a prefix or suffix glob anchors the other end', () => {
    expect(matchesModelPattern('spark-*', 'spark-lite')).toBe(true);
    expect(matchesModelPattern('spark-*', 'spark-')).toBe(true);
    expect(matchesModelPattern('spark-*', 'my-spark-lite')).toBe(false);
    expect(matchesModelPattern('*-mini', 'gpt-4o-mini')).toBe(true);
    expect(matchesModelPattern('*-mini', 'gpt-4o-mini-2')).toBe(false);
  });

  it('lets a star cross the slash of provider/model, so openai/* covers every OpenAI model', () => {
    expect(matchesModelPattern('openai/*', 'openai/gpt-4o')).toBe(true);
    expect(matchesModelPattern('openai/*', 'openai/ft:gpt-4o:org/x')).toBe(true);
    expect(matchesModelPattern('openai/*', 'azure/gpt-4o')).toBe(false);
    expect(matchesModelPattern('openai/*', 'openai')).toBe(false);
    expect(matchesModelPattern('*/gpt-4o', 'azure/gpt-4o')).toBe(true);
    expect(matchesModelPattern('*', 'anything/at all')).toBe(true);
  });

  it('backtracks when an earlier star took too little or too much', () => {
    expect(matchesModelPattern('a*b*c', 'abbbc')).toBe(true);
    expect(matchesModelPattern('a*b*c', 'aXbYbZc')).toBe(true);
    expect(matchesModelPattern('a*bc', 'abcbc')).toBe(true);
    expect(matchesModelPattern('a*bc', 'abcb')).toBe(false);
    expect(matchesModelPattern('**x', 'x')).toBe(true);
  });

  it('stays fast on a long client-chosen name that nearly matches a many-star pattern', () => {
    const pattern = `${'a*'.repeat(60)}b`;
    const name = 'a'.repeat(20_000);
    const startedAt = performance.now();
    expect(matchesModelPattern(pattern, name)).toBe(false);
    // Pattern × name is 2.4 million steps at most; a backtracking regex takes far longer here.
    expect(performance.now() - startedAt).toBeLessThan(2000);
  });
});

describe('isModelAllowed', () => {
  const list = ['chat', 'spark-*', 'openai/*'];

  it('allows a name any pattern of the list matches, and nothing else', () => {
    expect(isModelAllowed(list, 'chat')).toBe(true);
    expect(isModelAllowed(list, 'spark-max')).toBe(true);
    expect(isModelAllowed(list, 'openai/gpt-4o-mini')).toBe(true);
    expect(isModelAllowed(list, 'claude')).toBe(false);
    expect(isModelAllowed(list, 'anthropic/claude-sonnet-4')).toBe(false);
  });

  it('allows every model when there is no list, or an empty one', () => {
    expect(isModelAllowed(undefined, 'anything')).toBe(true);
    expect(isModelAllowed([], 'anything')).toBe(true);
  });
});

describe('modelRefusal', () => {
  const keyCaller: Principal = { userId: 'alice', role: 'user', via: 'key', keyId: 'abcdefghijkl', keyLimits: {}, allowedModels: ['chat', 'spark-*'] };

  it('is a 403 model_not_allowed on param model, naming the model, the key and what it may use', () => {
    const error = modelRefusal(keyCaller, 'gpt-4o');
    expect(error).toMatchObject({ code: 'model_not_allowed', status: 403, param: 'model' });
    expect(error?.message).toBe('The API key abcdefghijkl does not allow the model "gpt-4o"; it may use only chat, spark-*. GET /v1/models lists the models it can use.');
  });

  it('says token for a JWT caller and counts the patterns beyond the tenth', () => {
    const patterns = Array.from({ length: 12 }, (_, index) => `m${index.toString()}`);
    const message = modelRefusal({ userId: 'bob', role: 'user', via: 'jwt', keyLimits: {}, allowedModels: patterns }, 'gpt-4o')?.message;
    expect(message).toContain('The bearer token does not allow the model "gpt-4o"');
    expect(message).toContain('m9 and 2 more.');
    expect(message).not.toContain('m10');
  });

  it('is undefined for an allowed model and for a caller without a list', () => {
    expect(modelRefusal(keyCaller, 'spark-lite')).toBeUndefined();
    expect(modelRefusal({ userId: 'carol', role: 'user', via: 'key', keyId: 'x', keyLimits: {} }, 'gpt-4o')).toBeUndefined();
  });
});

describe('modelPatternsSchema', () => {
  it('accepts 1 to 100 patterns of the allowed alphabet', () => {
    expect(modelPatternsSchema.parse(['chat', 'spark-*', 'openai/gpt-4o', 'ft:model@v1.2_x'])).toEqual(['chat', 'spark-*', 'openai/gpt-4o', 'ft:model@v1.2_x']);
    expect(modelPatternsSchema.safeParse(Array.from({ length: 100 }, () => 'x')).success).toBe(true);
  });

  it('refuses an empty list, more than 100, an empty or too long pattern, and other characters, naming the element', () => {
    const issue = (value: unknown) => {
      const result = modelPatternsSchema.safeParse(value);
      return result.success ? undefined : { path: result.error.issues[0]?.path, message: result.error.issues[0]?.message };
    };
    expect(issue([])?.message).toMatch(/at least one model pattern; leave it out/);
    expect(issue(Array.from({ length: 101 }, () => 'x'))?.message).toMatch(/at most 100/);
    expect(issue(['chat', ''])).toMatchObject({ path: [1], message: expect.stringMatching(/1 to 128 characters/) as unknown });
    expect(issue(['x'.repeat(129)])?.path).toEqual([0]);
    expect(issue(['chat gpt'])?.path).toEqual([0]);
    expect(issue(['chat?'])?.path).toEqual([0]);
    expect(issue('chat')?.message).toMatch(/must be a list of model patterns/);
  });
});
