// Validation of the Responses API's requests (POST /v1/responses, GET /v1/responses/:id): the
// fields Sluice can serve on any provider are checked, each failure naming its field
// (`input[2].call_id`, `tools[0].type`); fields that would change the answer but cannot be served
// (hosted tools, structured output, conversations, prompt templates) are refused instead of being
// ignored; the rest (reasoning, include, truncation, …) are accepted and ignored, as SDKs and agent
// frameworks send them by default.
import { z } from 'zod';
import { parseBody, parseWith } from '../validate.js';
import type { RequestQuery } from '../request-context.js';

const maxTextChars = 1_000_000;

/** A JSON object; the preprocessors below only touch objects. */
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const textPartSchema = z.discriminatedUnion(
  'type',
  [z.looseObject({ type: z.literal('input_text'), text: z.string().max(maxTextChars) }), z.looseObject({ type: z.literal('output_text'), text: z.string().max(maxTextChars) })],
  { error: (issue) => (issue.code === 'invalid_union' ? 'content parts of this type are not supported by Sluice; send input_text or output_text' : undefined) },
);

const messageItemSchema = z.looseObject({
  type: z.literal('message'),
  role: z.enum(['user', 'assistant', 'system', 'developer']),
  // A string is one text part: the items are stored (and continued) in one shape.
  content: z.preprocess((value) => (typeof value === 'string' ? [{ type: 'input_text', text: value }] : value), z.array(textPartSchema, 'must be a string or a list of input_text/output_text parts')),
  id: z.string().optional(),
  status: z.string().optional(),
});

const functionCallItemSchema = z.looseObject({
  type: z.literal('function_call'),
  call_id: z.string().min(1).max(256),
  name: z.string().min(1).max(256),
  arguments: z.string().max(maxTextChars),
  id: z.string().optional(),
  status: z.string().optional(),
});

const functionCallOutputItemSchema = z.looseObject({
  type: z.literal('function_call_output'),
  call_id: z.string().min(1).max(256),
  // A list of input_text parts is the same output in pieces.
  output: z.preprocess(
    (value) => (Array.isArray(value) && value.every((part) => isRecord(part) && part['type'] === 'input_text' && typeof part['text'] === 'string') ? value.map((part: Record<string, unknown>) => part['text']).join('') : value),
    z.string('must be a string (or a list of input_text parts)').max(maxTextChars),
  ),
  id: z.string().optional(),
  status: z.string().optional(),
});

/** One input item; a message may leave out `type`, as OpenAI's EasyInputMessage does. */
export const inputItemSchema = z.preprocess(
  (value) => (isRecord(value) && value['type'] === undefined ? { ...value, type: 'message' } : value),
  z.discriminatedUnion('type', [messageItemSchema, functionCallItemSchema, functionCallOutputItemSchema], {
    error: (issue) => (issue.code === 'invalid_union' ? 'must be message, function_call or function_call_output; other item types are not supported by Sluice' : undefined),
  }),
);

export type InputItem = z.infer<typeof inputItemSchema>;

export const inputItemsSchema = z.array(inputItemSchema, 'must be a string or a list of input items');

const functionToolSchema = z.strictObject({
  type: z.literal('function'),
  name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -'),
  description: z.string().max(maxTextChars).nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});

const toolSchema = z.discriminatedUnion('type', [functionToolSchema], {
  error: (issue) => (issue.code === 'invalid_union' ? 'only function tools are supported by Sluice (hosted tools such as web_search or file_search are not)' : undefined),
});

export const toolChoiceSchema = z.union([z.enum(['none', 'auto', 'required']), z.strictObject({ type: z.literal('function'), name: z.string().min(1).max(64) })], {
  error: (issue) => (issue.code === 'invalid_union' ? 'must be none, auto, required or {"type":"function","name":…}' : undefined),
});

const metadataSchema = z
  .record(z.string().max(64, 'keys must be at most 64 characters'), z.string('values must be strings').max(512, 'values must be at most 512 characters'))
  .refine((metadata) => Object.keys(metadata).length <= 16, 'must have at most 16 keys');

const unsupported = (message: string) => z.never({ error: message }).nullish();

export const createResponseBodySchema = z
  .looseObject({
    model: z.string().min(1).max(256),
    // A string is one user message.
    input: z.preprocess((value) => (typeof value === 'string' ? [{ type: 'message', role: 'user', content: value }] : value), inputItemsSchema.min(1, 'must not be empty')),
    instructions: z.string().max(maxTextChars).nullish(),
    tools: z.array(toolSchema).max(128).nullish(),
    tool_choice: toolChoiceSchema.nullish(),
    temperature: z.number().min(0).max(2).nullish(),
    top_p: z.number().min(0).max(1).nullish(),
    max_output_tokens: z.number().int().positive().nullish(),
    metadata: metadataSchema.nullish(),
    user: z.string().max(256).nullish(),
    store: z.boolean().nullish(),
    background: z.boolean().nullish(),
    previous_response_id: z.string().min(1).max(256).nullish(),
    parallel_tool_calls: z.boolean().nullish(),
    stream: z.boolean().nullish(),
    text: z
      .looseObject({ format: z.looseObject({ type: z.literal('text', 'only {"type":"text"} is supported by Sluice (no structured output yet)') }).optional() })
      .nullish(),
    conversation: unsupported('conversations are not supported by Sluice; continue a response with previous_response_id'),
    prompt: unsupported('prompt templates are not supported by Sluice; send instructions and input'),
  })
  .check((context) => {
    const body = context.value;
    if (body.background === true && body.store === false) {
      context.issues.push({ code: 'custom', path: ['background'], message: 'a background response must be stored: leave store out or set it to true', input: body });
    }
  });

export type CreateResponseBody = z.infer<typeof createResponseBodySchema>;

/** Validates, or throws `invalid_request` naming the first bad field. */
export function parseCreateResponseBody(body: unknown): CreateResponseBody {
  return parseBody(createResponseBodySchema, body);
}

const retrieveQuerySchema = z.looseObject({
  stream: z.enum(['true', 'false'], 'must be true or false').optional(),
  starting_after: z.string().regex(/^\d{1,9}$/, 'must be a sequence number (a whole number)').transform(Number).optional(),
});

export type RetrieveQuery = z.infer<typeof retrieveQuerySchema>;

/** The query of GET /v1/responses/:id (`include` and the rest are accepted and ignored). */
export function parseRetrieveQuery(query: RequestQuery): RetrieveQuery {
  return parseWith(retrieveQuerySchema, Object.fromEntries(query));
}
