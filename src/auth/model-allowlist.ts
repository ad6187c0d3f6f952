// Model allowlists: which model names a caller may ask for. An API key or a JWT may carry a list of
// patterns (`chat`, `spark-*`, `openai/*`); the generation service refuses any other name before
// anything starts, and GET /v1/models shows only what the list allows. A pattern is matched against
// the name exactly as the client sent it (an alias or `provider/model`), never against what the
// name resolves to: an alias's fallbacks are part of the alias the list allows.
import { z } from 'zod';
import { SluiceError } from '../errors/sluice-error.js';
import type { Principal } from '../contract/principal.js';

/** At most this many patterns in one list. */
export const maxModelPatterns = 100;

const modelPatternPattern = /^[A-Za-z0-9._:/*@-]{1,128}$/;

/**
 * A stored list (a key's `models`): 1 to 100 patterns of 1 to 128 characters of
 * `A-Z a-z 0-9 . _ : / * @ -`. Failures name the list or the element (`[2]`), so a route can
 * prefix the field (`models[2]`). The empty list is refused rather than read as "every model", so
 * a client that meant to restrict a key but sent nothing by mistake hears about it.
 */
export const modelPatternsSchema = z
  .array(z.string({ error: 'must be a string' }).regex(modelPatternPattern, 'must be 1 to 128 characters of A-Z, a-z, 0-9 and . _ : / * @ -'), {
    error: 'must be a list of model patterns such as ["chat", "spark-*", "openai/*"]',
  })
  .min(1, 'must name at least one model pattern; leave it out to allow every model')
  .max(maxModelPatterns, `must hold at most ${maxModelPatterns.toString()} model patterns`);

/**
 * True when `name` matches `pattern` as a whole; `*` matches any run of characters (none included,
 * `/` included), everything else only itself, case-sensitively as model names are.
 *
 * Greedy matching that backtracks only to the last `*` costs at most pattern × name steps. A
 * regular expression built from the pattern would do the same job, but with several stars it
 * backtracks polynomially in their number on a long name that nearly matches, and the name comes
 * from the client.
 */
export function matchesModelPattern(pattern: string, name: string): boolean {
  let patternIndex = 0;
  let nameIndex = 0;
  let lastStar = -1;
  let resumeNameAt = 0;
  while (nameIndex < name.length) {
    const expected = pattern[patternIndex];
    if (expected === '*') {
      lastStar = patternIndex;
      resumeNameAt = nameIndex;
      patternIndex += 1;
    } else if (expected !== undefined && expected === name[nameIndex]) {
      patternIndex += 1;
      nameIndex += 1;
    } else if (lastStar !== -1) {
      // Let the last star swallow one more character and try the rest of the pattern again.
      resumeNameAt += 1;
      nameIndex = resumeNameAt;
      patternIndex = lastStar + 1;
    } else {
      return false;
    }
  }
  while (pattern[patternIndex] === '*') patternIndex += 1;
  return patternIndex === pattern.length;
}

/** True when the list allows `name`: it is absent or empty (every model), or a pattern matches. */
export function isModelAllowed(allowed: readonly string[] | undefined, name: string): boolean {
  return allowed === undefined || allowed.length === 0 || allowed.some((pattern) => matchesModelPattern(pattern, name));
}

/** How many of the list's patterns a refusal names; the rest are counted. */
const patternsNamed = 10;

/**
 * The `model_not_allowed` error (403, param `model`) for a principal whose allowlist does not
 * allow `model`, or undefined when it does. The message names the model and the patterns the
 * credential may use: they are the caller's own restrictions, so showing them leaks nothing.
 */
export function modelRefusal(principal: Principal, model: string): SluiceError | undefined {
  const allowed = principal.allowedModels;
  if (allowed === undefined || isModelAllowed(allowed, model)) return undefined;
  const credential = principal.keyId !== undefined ? `API key ${principal.keyId}` : principal.via === 'jwt' ? 'bearer token' : 'credential';
  const named = allowed.slice(0, patternsNamed).join(', ');
  const more = allowed.length > patternsNamed ? ` and ${(allowed.length - patternsNamed).toString()} more` : '';
  return new SluiceError('model_not_allowed', {
    param: 'model',
    message: `The ${credential} does not allow the model "${model}"; it may use only ${named}${more}. GET /v1/models lists the models it can use.`,
  });
}
