// The config schema read as a tree of settings, so that a message can name the right key: the
// schema of the setting at a path, the keys a mapping there allows, and every path a key appears
// at. Everything is read from the zod schema itself, so a new setting needs no list here.
import { z } from 'zod';

/** One step of a path into the document: a key, or an index into a list. */
export type PathSegment = string | number;

/** In a setting path, any key of a mapping whose keys the user chooses (provider ids, aliases, user ids). */
export const anyKey = '<id>';
/** In a setting path, any item of a list. */
export const anyItem = '[]';

/** Where a setting can be written, e.g. `limits.users.<id>.requestsPerMinute`. */
export interface SettingPath {
  /** Keys, with anyKey and anyItem where the document chooses. */
  readonly segments: readonly string[];
  /** Set when only one member of a union has the setting, e.g. `{ key: 'type', value: 'azure' }`. */
  readonly onlyWhen?: { readonly key: string; readonly value: string };
}

type Schema = z.core.$ZodType;

/** Strips the wrappers (optional, default, pipe, ...) that do not change what may be written. */
function unwrap(schema: Schema): z.core.$ZodTypes {
  let current = schema as z.core.$ZodTypes;
  for (;;) {
    const def = current._zod.def;
    switch (def.type) {
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'nonoptional':
      case 'readonly':
      case 'catch':
        current = def.innerType as z.core.$ZodTypes;
        break;
      case 'pipe':
        current = def.in as z.core.$ZodTypes;
        break;
      case 'lazy':
        current = def.getter() as z.core.$ZodTypes;
        break;
      default:
        return current;
    }
  }
}

/** The members of a union, and the key that tells them apart when it is a discriminated one. */
function unionMembers(schema: z.core.$ZodTypes): { members: readonly Schema[]; discriminator?: string } | undefined {
  const def = schema._zod.def;
  if (def.type !== 'union') return undefined;
  return 'discriminator' in def && typeof def.discriminator === 'string' ? { members: def.options, discriminator: def.discriminator } : { members: def.options };
}

/** The literal values a discriminated union member's discriminator takes. */
function literalValues(member: Schema, discriminator: string): string[] {
  const object = unwrap(member);
  if (object._zod.def.type !== 'object') return [];
  const field = object._zod.def.shape[discriminator];
  if (field === undefined) return [];
  const literal = unwrap(field);
  return literal._zod.def.type === 'literal' ? literal._zod.def.values.map(String) : [];
}

/**
 * The members of a union `document` may be: for a discriminated union, the one its discriminator
 * names (all of them when it names none); for a plain union, all of them.
 */
function candidateMembers(members: readonly Schema[], discriminator: string | undefined, document: unknown): readonly Schema[] {
  if (discriminator === undefined || !isRecord(document)) return members;
  const value = document[discriminator];
  const chosen = members.filter((member) => literalValues(member, discriminator).includes(String(value)));
  return chosen.length > 0 ? chosen : members;
}

/** The schemas that may hold the setting at `path` of `document` (several where a union cannot tell). */
function schemasAt(schema: Schema, path: readonly PathSegment[], document: unknown): z.core.$ZodTypes[] {
  const current = unwrap(schema);
  const union = unionMembers(current);
  if (union) return candidateMembers(union.members, union.discriminator, document).flatMap((member) => schemasAt(member, path, document));
  const [head, ...rest] = path;
  if (head === undefined) return [current];
  const def = current._zod.def;
  const child = isRecord(document) || Array.isArray(document) ? (document as Record<PathSegment, unknown>)[head] : undefined;
  switch (def.type) {
    case 'object': {
      const field = typeof head === 'string' ? def.shape[head] : undefined;
      return field === undefined ? [] : schemasAt(field, rest, child);
    }
    case 'record':
      return schemasAt(def.valueType, rest, child);
    case 'array':
      return schemasAt(def.element, rest, child);
    default:
      return [];
  }
}

/** The keys the mapping at `path` of `document` allows, in the schema's order; empty when it is no mapping. */
export function keysAt(schema: Schema, path: readonly PathSegment[], document: unknown): string[] {
  const keys = new Set<string>();
  for (const found of schemasAt(schema, path, document)) {
    if (found._zod.def.type === 'object') for (const key of Object.keys(found._zod.def.shape)) keys.add(key);
  }
  return [...keys];
}

/** Whether the setting at `path` is a whole number (`z.number().int()`). */
export function isWholeNumberAt(schema: Schema, path: readonly PathSegment[], document: unknown): boolean {
  const found = schemasAt(schema, path, document);
  return found.length > 0 && found.every((setting) => setting instanceof z.ZodNumber && setting.isInt);
}

const pathsBySchema = new WeakMap<Schema, readonly SettingPath[]>();

/** Every setting the schema allows, depth first in the schema's order. */
export function settingPaths(schema: Schema): readonly SettingPath[] {
  let paths = pathsBySchema.get(schema);
  if (!paths) {
    paths = [...walk(schema, [], undefined)];
    pathsBySchema.set(schema, paths);
  }
  return paths;
}

function* walk(schema: Schema, prefix: readonly string[], onlyWhen: SettingPath['onlyWhen']): Generator<SettingPath> {
  const current = unwrap(schema);
  const union = unionMembers(current);
  if (union) {
    for (const member of union.members) {
      const value = union.discriminator === undefined ? undefined : literalValues(member, union.discriminator)[0];
      yield* walk(member, prefix, union.discriminator !== undefined && value !== undefined ? { key: union.discriminator, value } : onlyWhen);
    }
    return;
  }
  const def = current._zod.def;
  if (def.type === 'object') {
    for (const [key, field] of Object.entries(def.shape)) {
      const segments = [...prefix, key];
      yield onlyWhen ? { segments, onlyWhen } : { segments };
      yield* walk(field, segments, onlyWhen);
    }
  } else if (def.type === 'record') yield* walk(def.valueType, [...prefix, anyKey], onlyWhen);
  else if (def.type === 'array') yield* walk(def.element, [...prefix, anyItem], onlyWhen);
}

/** Whether a concrete path is one the setting path describes. */
export function matchesSettingPath(segments: readonly string[], path: readonly PathSegment[]): boolean {
  return segments.length === path.length && segments.every((segment, index) => segment === anyKey || segment === anyItem || segment === String(path[index]));
}

/** `limits.users.<id>.requestsPerMinute`, `models.<id>.deployments[].provider`. */
export function formatSettingPath(segments: readonly string[]): string {
  return segments.reduce((text, segment) => (segment === anyItem ? `${text}[]` : text === '' ? segment : `${text}.${segment}`), '');
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
