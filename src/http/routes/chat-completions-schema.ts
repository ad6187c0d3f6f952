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
  return parseBody(chatCompletionRequestSchema, body);
}
