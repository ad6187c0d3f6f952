// Validation of the OpenAI chat completions request body. Unknown fields pass through to the
// provider (compatible servers have their own); known ones are type-checked so a mistake gets a
// 400 naming the field instead of an upstream error.
import { z } from 'zod';
import { parseBody } from '../validate.js';

export const chatMessageSchema = z
  .looseObject({
    role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
    content: z.union([z.string(), z.array(z.looseObject({ type: z.string() })), z.null()]).optional(),
    name: z.string().optional(),
    tool_call_id: z.string().optional(),
    tool_calls: z.array(z.looseObject({})).optional(),
  })
  .refine((value) => value.content !== undefined || value.role === 'assistant', { message: 'is required', path: ['content'] });

export const chatCompletionRequestSchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(chatMessageSchema).min(1, 'must contain at least one message'),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  n: z.literal(1, 'only n = 1 is supported').nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  seed: z.number().int().nullish(),
  tools: z.array(z.looseObject({ type: z.string() })).nullish(),
  tool_choice: z.union([z.string(), z.looseObject({})]).nullish(),
  user: z.string().max(256).nullish(),
});

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

/** Validates, or throws `invalid_request` naming the first bad field (`messages[0].role`). */
export function parseChatCompletionRequest(body: unknown): ChatCompletionRequest {
  return parseCommonRequest(body) ?? parseBody(chatCompletionRequestSchema, body);
}

// The common request, checked by hand. The schema above cost a tenth of a non-streamed request's
// CPU and of the time before the upstream call (docs/decisions/0025-per-request-path.md), though
// almost every body is a model, messages of a role and a string, and a few plain fields. Such a
// body is accepted here with exactly the value the schema returns (its fields in the schema's
// order, messages copied); any other body, valid or not, goes to the schema, which alone words
// the errors. chat-completions-schema.test.ts checks the two agree.

type Check = (value: unknown) => boolean;
const isNumberIn = (minimum: number, maximum: number): Check => (value) => typeof value === 'number' && Number.isFinite(value) && value >= minimum && value <= maximum;
const isPositiveInteger: Check = (value) => Number.isSafeInteger(value) && (value as number) > 0;
const isStreamOptions: Check = (value) => {
  if (!isPlainObject(value)) return false;
  for (const key in value) if (key !== 'include_usage' || typeof value[key] !== 'boolean') return false;
  return true;
};
/** The fields the hand check knows, each nullish (null passes, absence is not looked at). */
const commonFields: ReadonlyMap<string, Check> = new Map<string, Check>([
  ['stream', (value) => typeof value === 'boolean'],
  ['stream_options', isStreamOptions],
  ['temperature', isNumberIn(0, 2)],
  ['top_p', isNumberIn(0, 1)],
  ['max_tokens', isPositiveInteger],
  ['max_completion_tokens', isPositiveInteger],
  ['n', (value) => value === 1],
  ['presence_penalty', isNumberIn(-2, 2)],
  ['frequency_penalty', isNumberIn(-2, 2)],
  ['seed', (value) => Number.isSafeInteger(value)],
  ['user', (value) => typeof value === 'string' && value.length <= 256],
]);
const bodyOrder = Object.keys(chatCompletionRequestSchema.shape);
const messageOrder = Object.keys(chatMessageSchema.shape);
const roles: ReadonlySet<unknown> = new Set(chatMessageSchema.shape.role.options);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A message of a known role, string content and optionally a string name, copied in the schema's order. */
function commonMessage(value: unknown): Record<string, unknown> | undefined {
  if (!isPlainObject(value) || !roles.has(value['role']) || typeof value['content'] !== 'string') return undefined;
  for (const key in value) if (key !== 'role' && key !== 'content' && (key !== 'name' || typeof value[key] !== 'string')) return undefined;
  const message: Record<string, unknown> = {};
  for (const key of messageOrder) if (key in value) message[key] = value[key];
  return message;
}

/** The schema's value of a common body, or undefined to let the schema decide. */
function parseCommonRequest(body: unknown): ChatCompletionRequest | undefined {
  if (!isPlainObject(body) || typeof body['model'] !== 'string' || body['model'] === '' || !Array.isArray(body['messages']) || body['messages'].length === 0) return undefined;
  for (const key in body) {
    if (key === 'model' || key === 'messages') continue;
    const check = commonFields.get(key);
    const value = body[key];
    if (check === undefined || (value !== null && !check(value))) return undefined;
  }
  const messages: Record<string, unknown>[] = [];
  for (const value of body['messages'] as unknown[]) {
    const message = commonMessage(value);
    if (message === undefined) return undefined;
    messages.push(message);
  }
  const request: Record<string, unknown> = {};
  for (const key of bodyOrder) {
    if (!(key in body)) continue;
    const value = body[key];
    request[key] = key === 'messages' ? messages : key === 'stream_options' && value !== null ? { ...(value as object) } : value;
  }
  return request as ChatCompletionRequest;
}
