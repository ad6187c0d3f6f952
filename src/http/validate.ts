// Request validation for every route: a zod schema, and on failure one `invalid_request` error
// whose `param` and message name the first bad field (`messages[0].role`, `limits.rpm`).
import type { z } from 'zod';
import { SluiceError } from '../errors/sluice-error.js';

/** Validates a JSON body (which must be an object), or throws `invalid_request` naming the field. */
export function parseBody<Schema extends z.ZodType>(schema: Schema, body: unknown): z.infer<Schema> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new SluiceError('invalid_request', { message: 'The request body must be a JSON object.' });
  }
  return parseWith(schema, body);
}

/** Validates any value (a body, query parameters), or throws `invalid_request` naming the field. */
export function parseWith<Schema extends z.ZodType>(schema: Schema, value: unknown): z.infer<Schema> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  let param = formatPath(issue?.path ?? []);
  let detail = issue?.message ?? 'is invalid';
  if (issue?.code === 'invalid_type' && issue.input === undefined) detail = 'is required';
  else if (issue?.code === 'unrecognized_keys') {
    // The unknown field itself is the one to name: `limits.rpm`, not `limits`.
    param = formatPath([...issue.path, issue.keys[0] ?? '']);
    detail = 'is not a known field; check the spelling';
  }
  throw new SluiceError('invalid_request', { param, message: `${param}: ${detail}` });
}

function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const key of path) text += typeof key === 'number' ? `[${key.toString()}]` : `${text ? '.' : ''}${String(key)}`;
  return text || '(body)';
}
