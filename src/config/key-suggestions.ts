// What to say about an unknown key: the allowed key it is probably a typo of (`apikey` → apiKey),
// or, when it is a real setting written at the wrong level, where it belongs
// (`server.redisUrl` → cluster.redisUrl). Both are read from the schema, never from a list.
import type { z } from 'zod';
import { anyItem, anyKey, formatSettingPath, keysAt, matchesSettingPath, settingPaths, type PathSegment, isRecord } from './schema-tree.js';

export interface UnknownKeyAdvice {
  message: string;
  /** The allowed key the unknown one is a typo of, when there is exactly one: the message explains a missing one too. */
  meant?: string;
}

/** Alternatives named after "belongs under": more is a list to read, not advice. */
const maxPlaces = 3;

/**
 * Advice for `key`, refused in the mapping at `objectPath` of `document`: a close allowed key
 * there; else the places the schema has that key (or the one member of a union that has it);
 * else where to look it up.
 */
export function adviseUnknownKey(schema: z.core.$ZodType, objectPath: readonly PathSegment[], key: string, document: unknown): UnknownKeyAdvice {
  const close = closestKeys(key, keysAt(schema, objectPath, document));
  if (close.length === 1 && close[0] !== undefined) return { message: `unknown setting ${key}; did you mean ${close[0]}?`, meant: close[0] };
  if (close.length > 1) return { message: `unknown setting ${key}; did you mean ${orList(close)}?` };

  const elsewhere = settingPaths(schema).filter((setting) => setting.segments.at(-1)?.toLowerCase() === key.toLowerCase());
  // A setting of other members of the same union (an azure-only key on an openai provider).
  const siblings = elsewhere.filter((setting) => setting.onlyWhen && matchesSettingPath(setting.segments.slice(0, -1), objectPath));
  const discriminator = siblings[0]?.onlyWhen?.key;
  if (discriminator !== undefined) {
    const object = valueAt(document, objectPath);
    const actual = isRecord(object) ? object[discriminator] : undefined;
    const which = typeof actual === 'string' ? ` for ${discriminator} ${actual}` : '';
    const owners = [...new Set(siblings.map((setting) => setting.onlyWhen?.value ?? ''))];
    return { message: `unknown setting ${key}${which}; it is a setting of ${discriminator} ${orList(owners)}` };
  }
  // Nearest first: a place inside the mapping the key was written in (limits.perUser for a key
  // under limits) is likelier meant than one elsewhere (providers.<id>.limits).
  const candidates = elsewhere.filter((setting) => !matchesSettingPath(setting.segments.slice(0, -1), objectPath));
  const nearest = candidates.map((setting, index) => ({ setting, index, shared: sharedPrefix(setting.segments, objectPath) })).sort((a, b) => b.shared - a.shared || a.index - b.index);
  const places = [...new Set(nearest.map(({ setting }) => formatSettingPath(setting.segments)))];
  const [first, ...others] = places.slice(0, maxPlaces);
  if (first !== undefined) return { message: `unknown setting ${key}; it belongs under ${first}${others.length > 0 ? ` (or ${others.join(', or ')})` : ''}` };
  return { message: `unknown setting ${key}; check the spelling against docs/configuration.md` };
}

/**
 * The candidates nearest to `word`: the same apart from case, else within a small edit distance
 * (one edit for short words, about one in four characters for longer ones, at most three; none
 * for words of one or two characters).
 */
export function closestKeys(word: string, candidates: readonly string[]): string[] {
  const lower = word.toLowerCase();
  const sameButCase = candidates.filter((candidate) => candidate.toLowerCase() === lower && candidate !== word);
  if (sameButCase.length > 0) return sameButCase;
  // In a word of one or two characters, one edit is half of it: no longer a typo.
  const allowed = word.length < 3 ? 0 : Math.min(3, Math.max(1, Math.floor(word.length / 4)));
  let best = allowed + 1;
  let nearest: string[] = [];
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance === 0 || distance > allowed) continue;
    if (distance < best) [best, nearest] = [distance, [candidate]];
    else if (distance === best) nearest.push(candidate);
  }
  return nearest;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours each count one. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => rows[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) distance = Math.min(distance, at(i - 2, j - 2) + 1);
      const row = rows[i];
      if (row) row[j] = distance;
    }
  }
  return at(a.length, b.length);
}

/** `a`, `a or b`, `a, b or c`. */
export function orList(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} or ${items.at(-1) ?? ''}`;
}

function valueAt(document: unknown, path: readonly PathSegment[]): unknown {
  let current = document;
  for (const segment of path) current = isRecord(current) || Array.isArray(current) ? (current as Record<PathSegment, unknown>)[segment] : undefined;
  return current;
}

/** How many leading segments of a setting path `path` matches (any key or item matching anything). */
function sharedPrefix(segments: readonly string[], path: readonly PathSegment[]): number {
  let shared = 0;
  while (shared < segments.length && shared < path.length && (segments[shared] === anyKey || segments[shared] === anyItem || segments[shared] === String(path[shared]))) shared += 1;
  return shared;
}
