// The schema's problems in Sluice's own words rather than the validation library's: "must be a
// whole number above 0", not "Too small: expected number to be >0". A message written in the
// schema itself (URLs, ids) is kept as it is. One mistake gives one line: an unknown key that is a
// typo of a required one also explains the "required" the typo caused, and of the members of a
// union only the nearest one is reported.
import { z } from 'zod';
import type { ConfigIssue } from './config-issue.js';
import { adviseUnknownKey, closestKeys, orList } from './key-suggestions.js';
import { isRecord, isWholeNumberAt, type PathSegment } from './schema-tree.js';

/** `1 problem`, `2 problems`; `1 model alias`, `2 model aliases` with the plural given. */
export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count.toString()} ${count === 1 ? singular : pluralForm}`;
}

/** What a message is read against: the schema that found the issues and the document it read. */
interface Context {
  readonly schema: z.core.$ZodType;
  readonly document: unknown;
}

interface Described {
  readonly path: readonly PathSegment[];
  readonly message: string;
  /** Set on "required": another message may explain it. */
  readonly required?: true;
  /** The path of a missing setting this message accounts for (the key it is a typo of). */
  readonly explains?: readonly PathSegment[];
}

/** zod's issues for `document`, in Sluice's words, one line per mistake, in the schema's order. */
export function describeSchemaIssues(issues: readonly z.core.$ZodIssue[], schema: z.core.$ZodType, document: unknown): ConfigIssue[] {
  const context: Context = { schema, document };
  const described = issues.flatMap((issue) => nearestMember(issue)).flatMap((issue) => describe(issue, context));
  const explained = new Set(described.flatMap((entry) => (entry.explains ? [dotted(entry.explains)] : [])));
  const seen = new Set<string>();
  const result: ConfigIssue[] = [];
  for (const entry of described) {
    const path = dotted(entry.path);
    if (entry.required && explained.has(path)) continue;
    if (seen.has(`${path}\n${entry.message}`)) continue;
    seen.add(`${path}\n${entry.message}`);
    result.push({ path, message: entry.message });
  }
  return result;
}

/**
 * A value that matches no member of a plain union gets the issues of the member it came nearest
 * to (the fewest issues), not those of every member.
 */
function nearestMember(issue: z.core.$ZodIssue): z.core.$ZodIssue[] {
  if (issue.code !== 'invalid_union' || issue.errors.length === 0 || isTypeMismatch(issue)) return [issue];
  const nearest = issue.errors.reduce((best, member) => (member.length < best.length ? member : best));
  return nearest.flatMap((inner) => nearestMember({ ...inner, path: [...issue.path, ...inner.path] }));
}

/** Every member refused the value's type: one "expected a or b" says it all. */
function isTypeMismatch(issue: z.core.$ZodIssueInvalidUnion): boolean {
  return issue.errors.every((member) => member.length === 1 && member[0]?.code === 'invalid_type' && member[0].path.length === 0);
}

function describe(issue: z.core.$ZodIssue, context: Context): Described[] {
  const path = issue.path.map((segment) => (typeof segment === 'number' ? segment : String(segment)));
  const one = (message: string): Described[] => [{ path, message }];
  switch (issue.code) {
    case 'unrecognized_keys':
      // One line per key: each is its own mistake, with its own advice.
      return issue.keys.map((key) => {
        const advice = adviseUnknownKey(context.schema, path, key, context.document);
        return advice.meant === undefined ? { path, message: advice.message } : { path, message: advice.message, explains: [...path, advice.meant] };
      });
    case 'invalid_union':
      return describeUnion(issue, path);
    default:
      break;
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) {
    // The schema's own message says what to write (a URL such as …); either way it is missing.
    return [{ path, message: hasOwnMessage(issue) ? `required; ${issue.message}` : `required (${typeWords(issue.expected)})`, required: true }];
  }
  if (hasOwnMessage(issue)) return one(issue.message);
  switch (issue.code) {
    case 'invalid_type':
      if (issue.expected === 'int') return one(`must be a whole number, got ${describeValue(issue.input)}`);
      return one(`expected ${typeWords(issue.expected)}, got ${describeValue(issue.input)}`);
    case 'too_small':
      return one(tooSmall(issue, path, context));
    case 'too_big':
      return one(tooBig(issue, path, context));
    case 'invalid_format':
      return one(issue.format === 'url' ? 'must be a URL' : issue.format === 'regex' && issue.pattern ? `must match ${issue.pattern}` : `must be a valid ${issue.format}`);
    case 'invalid_value': {
      const allowed = issue.values.map((value) => (typeof value === 'string' ? value : JSON.stringify(value)));
      const rule = allowed.length === 1 ? `must be ${allowed[0] ?? ''}` : `must be one of: ${allowed.join(', ')}`;
      return one(issue.input === undefined ? `required; ${rule.replace(/^must be /, '')}` : `${rule} (got ${describeValue(issue.input)})`);
    }
    case 'invalid_key': {
      const reasons = issue.issues.flatMap((inner) => describe({ ...inner, path: [] }, context)).map((entry) => entry.message);
      return one(`${JSON.stringify(path.at(-1) ?? '')} is not allowed as a name here: ${reasons.join('; ')}`);
    }
    case 'not_multiple_of':
      return one(`must be a multiple of ${issue.divisor.toString()}`);
    default:
      return one(issue.message);
  }
}

/**
 * A discriminated union (`type`, `scheme`) whose key is missing, misspelt or names no member; or
 * a plain union refused by every member.
 */
function describeUnion(issue: z.core.$ZodIssueInvalidUnion, path: PathSegment[]): Described[] {
  const { discriminator } = issue;
  if (discriminator !== undefined) {
    const objectPath = path.at(-1) === discriminator ? path.slice(0, -1) : path;
    const object = issue.input;
    const options = 'options' in issue && issue.options ? issue.options.map(String) : [];
    if (isRecord(object) && object[discriminator] === undefined) {
      // `tpye: openai` is one typo, not a missing type and nothing else.
      const misspelt = Object.keys(object).find((key) => closestKeys(key, [discriminator]).length > 0);
      if (misspelt !== undefined) return [{ path: objectPath, message: `unknown setting ${misspelt}; did you mean ${discriminator}?` }];
      return [{ path: [...objectPath, discriminator], message: `required; one of: ${options.join(', ')}` }];
    }
    if (hasOwnMessage(issue)) return [{ path, message: issue.message }];
    const value = isRecord(object) ? object[discriminator] : undefined;
    return [{ path: [...objectPath, discriminator], message: `must be one of: ${options.join(', ')} (got ${describeValue(value)})` }];
  }
  if (hasOwnMessage(issue)) return [{ path, message: issue.message }];
  if (issue.errors.length > 0 && isTypeMismatch(issue)) {
    const expected = issue.errors.flatMap((member) => (member[0]?.code === 'invalid_type' ? [typeWords(member[0].expected)] : []));
    return [{ path, message: issue.input === undefined ? `required (${orList(expected)})` : `expected ${orList(expected)}, got ${describeValue(issue.input)}` }];
  }
  return [{ path, message: issue.message }];
}

function tooSmall(issue: z.core.$ZodIssueTooSmall, path: PathSegment[], context: Context): string {
  const minimum = Number(issue.minimum);
  switch (issue.origin) {
    case 'number':
    case 'int': {
      const noun = numberNoun(issue.origin, path, context);
      if (!issue.inclusive) return `must be ${noun} above ${minimum.toString()}`;
      return minimum === 0 ? `must be ${noun}, 0 or more` : `must be ${noun} of at least ${minimum.toString()}`;
    }
    case 'string':
      if (minimum === 1 && !issue.exact) return 'must not be empty';
      return `${issue.exact ? 'needs exactly' : 'needs at least'} ${plural(minimum, 'character')}`;
    case 'array':
      return `${issue.exact ? 'needs exactly' : 'needs at least'} ${plural(minimum, 'item')}`;
    default:
      return issue.message;
  }
}

function tooBig(issue: z.core.$ZodIssueTooBig, path: PathSegment[], context: Context): string {
  const maximum = Number(issue.maximum);
  switch (issue.origin) {
    case 'number':
    case 'int':
      return `must be ${numberNoun(issue.origin, path, context)} ${issue.inclusive ? 'of at most' : 'below'} ${maximum.toString()}`;
    case 'string':
      return `${issue.exact ? 'needs exactly' : 'may have at most'} ${plural(maximum, 'character')}`;
    case 'array':
      return `${issue.exact ? 'needs exactly' : 'may have at most'} ${plural(maximum, 'item')}`;
    default:
      return issue.message;
  }
}

/** "a whole number" where the schema says int, else "a number". */
function numberNoun(origin: string, path: readonly PathSegment[], context: Context): string {
  return origin === 'int' || isWholeNumberAt(context.schema, path, context.document) ? 'a whole number' : 'a number';
}

const typeNames: Readonly<Record<string, string>> = {
  string: 'text',
  number: 'number',
  int: 'a whole number',
  boolean: 'true/false',
  array: 'a list',
  tuple: 'a list',
  object: 'a mapping',
  record: 'a mapping',
  null: 'null',
};

function typeWords(expected: string): string {
  return typeNames[expected] ?? expected;
}

/** `number 5`, `string "eighty"`, `a list`, `a mapping`, `null`. */
function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a mapping' : `${typeof value} ${JSON.stringify(value)}`;
}

/** Whether the schema wrote this issue's message itself (zod's own default would differ). */
function hasOwnMessage(issue: z.core.$ZodIssue): boolean {
  const fallback = z.config().localeError?.({ ...issue, input: issue.input } as z.core.$ZodRawIssue);
  const text = typeof fallback === 'string' ? fallback : fallback?.message;
  return text !== undefined && text !== issue.message;
}

function dotted(path: readonly PathSegment[]): string {
  return path.map(String).join('.');
}
