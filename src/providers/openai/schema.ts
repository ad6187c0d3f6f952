// Minimal, lenient shapes of what an OpenAI-compatible upstream sends: only the fields Sluice
// reads, everything else ignored, so compatible servers that add or omit fields still work.
import { z } from 'zod';

const usageSchema = z
  .object({
    prompt_tokens: z.number().nonnegative().catch(0),
    completion_tokens: z.number().nonnegative().catch(0),
    total_tokens: z.number().nonnegative().optional(),
  })
  .nullish()
  .catch(null);

const toolCallDeltaSchema = z.object({
  index: z.number().int().nonnegative().optional(),
  id: z.string().nullish(),
  function: z.object({ name: z.string().nullish(), arguments: z.string().nullish() }).nullish(),
});

export const chunkSchema = z.object({
  model: z.string().optional(),
  choices: z
    .array(
      z.object({
        delta: z
          .object({
            content: z.string().nullish(),
            tool_calls: z.array(toolCallDeltaSchema).nullish(),
          })
          .nullish(),
        finish_reason: z.string().nullish(),
      }),
    )
    .nullish(),
  usage: usageSchema,
});

export const completionSchema = z.object({
  model: z.string().optional(),
  choices: z
    .array(
      z.object({
        message: z.object({
          content: z.string().nullish(),
          tool_calls: z
            .array(z.object({ id: z.string().nullish(), function: z.object({ name: z.string().nullish(), arguments: z.string().nullish() }).nullish() }))
            .nullish(),
        }),
        finish_reason: z.string().nullish(),
      }),
    )
    .min(1),
  usage: usageSchema,
});

export const errorBodySchema = z.object({
  error: z.union([
    z.object({ message: z.string().nullish(), type: z.string().nullish(), code: z.union([z.string(), z.number()]).nullish(), param: z.string().nullish() }),
    z.string(),
  ]),
});

export type OpenAiChunk = z.infer<typeof chunkSchema>;
export type OpenAiCompletion = z.infer<typeof completionSchema>;
export type OpenAiUsage = z.infer<typeof usageSchema>;
export type OpenAiErrorBody = z.infer<typeof errorBodySchema>;
