// Validation of the Anthropic Messages API's requests (POST /v1/messages and
// /v1/messages/count_tokens): what Sluice can serve on any provider is checked, each failure
// naming its field (`messages[1].content[0].tool_use_id`, `tools[0].name`); what would change the
// answer but cannot be served (images and documents, server tools such as web_search) is refused
// instead of being ignored; the rest (`thinking`, `metadata`, `top_k`, `service_tier`, cache
// control on blocks, …) is accepted and ignored, as Claude Code and the SDKs send it by default.
import { z } from 'zod';
import { parseBody } from '../validate.js';

const maxTextChars = 1_000_000;

const textBlockSchema = z.looseObject({ type: z.literal('text'), text: z.string().max(maxTextChars) });

const toolUseBlockSchema = z.looseObject({
  type: z.literal('tool_use'),
  id: z.string().min(1).max(256),
  name: z.string().min(1).max(256),
  input: z.record(z.string(), z.unknown(), 'must be an object (the tool call\'s arguments)'),
});

const toolResultBlockSchema = z.looseObject({
  type: z.literal('tool_result'),
  tool_use_id: z.string().min(1).max(256),
  // A list of text blocks is the same result in pieces.
  content: z
    .union([z.string().max(maxTextChars), z.array(textBlockSchema, 'must be a string or a list of text blocks (images in tool results are not supported by Sluice)')])
    .optional(),
  is_error: z.boolean().nullish(),
});

/** Thinking blocks a client sends back with an assistant turn: accepted, and not sent on. */
const thinkingBlockSchema = z.looseObject({ type: z.enum(['thinking', 'redacted_thinking']) });

const blockSchema = z.discriminatedUnion('type', [textBlockSchema, toolUseBlockSchema, toolResultBlockSchema, thinkingBlockSchema], {
  error: (issue) => (issue.code === 'invalid_union' ? 'content blocks of this type are not supported by Sluice; send text, tool_use or tool_result' : undefined),
});

export type ContentBlockInput = z.infer<typeof blockSchema>;

const messageSchema = z.looseObject({
  role: z.enum(['user', 'assistant']),
  // A string is one text block.
  content: z.preprocess((value) => (typeof value === 'string' ? [{ type: 'text', text: value }] : value), z.array(blockSchema, 'must be a string or a list of content blocks')),
});

export type MessageInput = z.infer<typeof messageSchema>;

const toolSchema = z.looseObject({
  // Absent or `custom`: a client tool. Anything else is one of Anthropic's server tools.
  type: z.literal('custom', 'only client tools (no type, or "custom") are supported by Sluice; server tools such as web_search run only on Anthropic').optional(),
  name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -'),
  description: z.string().max(maxTextChars).optional(),
  input_schema: z.record(z.string(), z.unknown(), 'must be a JSON schema object'),
});

export type ToolInput = z.infer<typeof toolSchema>;

const toolChoiceSchema = z.discriminatedUnion(
  'type',
  [
    z.looseObject({ type: z.literal('auto'), disable_parallel_tool_use: z.boolean().optional() }),
    z.looseObject({ type: z.literal('any'), disable_parallel_tool_use: z.boolean().optional() }),
    z.looseObject({ type: z.literal('tool'), name: z.string().min(1).max(64), disable_parallel_tool_use: z.boolean().optional() }),
    z.looseObject({ type: z.literal('none') }),
  ],
  { error: (issue) => (issue.code === 'invalid_union' ? 'must be {"type":"auto"}, {"type":"any"}, {"type":"tool","name":…} or {"type":"none"}' : undefined) },
);

export type ToolChoiceInput = z.infer<typeof toolChoiceSchema>;

/** `system`: a string, or text blocks (with cache_control and the like, which are ignored). */
const systemSchema = z.union([z.string().max(maxTextChars), z.array(textBlockSchema)], { error: 'must be a string or a list of text blocks' });

const countTokensFields = {
  model: z.string().min(1).max(256),
  messages: z.array(messageSchema).min(1, 'must contain at least one message'),
  system: systemSchema.optional(),
  tools: z.array(toolSchema).max(128).optional(),
  tool_choice: toolChoiceSchema.optional(),
};

export const createMessageBodySchema = z.looseObject({
  ...countTokensFields,
  max_tokens: z.number().int().positive(),
  stream: z.boolean().optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  stop_sequences: z.array(z.string().min(1)).max(4, 'at most 4 stop sequences (OpenAI-type providers take no more)').optional(),
});

export type CreateMessageBody = z.infer<typeof createMessageBodySchema>;

export const countTokensBodySchema = z.looseObject(countTokensFields);

export type CountTokensBody = z.infer<typeof countTokensBodySchema>;

/** Validates, or throws `invalid_request` naming the first bad field. */
export function parseCreateMessageBody(body: unknown): CreateMessageBody {
  return parseBody(createMessageBodySchema, body);
}

export function parseCountTokensBody(body: unknown): CountTokensBody {
  return parseBody(countTokensBodySchema, body);
}
