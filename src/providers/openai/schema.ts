// Minimal, lenient shapes of what an OpenAI-compatible upstream sends: only the fields Sluice
// reads, everything else ignored, so compatible servers that add or omit fields still work.
//
// Stream chunks are read by `readChunk`, a hand-written narrowing, not a zod schema: it runs once
// per token, and zod's safeParse cost about a fifth of the gateway's CPU on the stream path
// (decision 0004). Whole responses and error bodies, read once per request, use zod.
import { z } from 'zod';

const usageSchema = z
  .object({
    prompt_tokens: z.number().nonnegative().catch(0),
    completion_tokens: z.number().nonnegative().catch(0),
    total_tokens: z.number().nonnegative().optional(),
    // Prompt tokens served from OpenAI's prompt cache: part of prompt_tokens, billed cheaper.
    prompt_tokens_details: z.object({ cached_tokens: z.number().nonnegative().optional().catch(undefined) }).nullish().catch(null),
  })
  .nullish()
  .catch(null);

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

export type OpenAiCompletion = z.infer<typeof completionSchema>;
export type OpenAiUsage = z.infer<typeof usageSchema>;
export type OpenAiErrorBody = z.infer<typeof errorBodySchema>;

export interface ChunkUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens?: number | undefined;
  /** `prompt_tokens_details.cached_tokens`: the prompt tokens read from the prompt cache. */
  prompt_tokens_details?: { cached_tokens?: number | undefined } | null | undefined;
}

export interface ToolCallPiece {
  index: number;
  id?: string;
  name?: string;
  arguments?: string;
}

export type ReadChunk =
  | { kind: 'chunk'; content: string | undefined; toolCalls: readonly ToolCallPiece[]; finishReason: string | undefined; usage: ChunkUsage | undefined }
  | { kind: 'error'; json: unknown }
  | { kind: 'invalid'; problem: string };

const noToolCalls: readonly ToolCallPiece[] = [];

/** Reads the fields Sluice uses from one parsed `chat.completion.chunk`. */
export function readChunk(json: unknown): ReadChunk {
  if (!isRecord(json)) return { kind: 'invalid', problem: 'the event is not a JSON object' };
  if (json['error'] !== undefined && json['error'] !== null) return { kind: 'error', json };
  let content: string | undefined;
  let toolCalls = noToolCalls;
  let finishReason: string | undefined;
  const choices = json['choices'];
  if (choices !== undefined && choices !== null) {
    if (!Array.isArray(choices)) return { kind: 'invalid', problem: 'choices is not a list' };
    const choice: unknown = choices[0];
    if (choice !== undefined) {
      if (!isRecord(choice)) return { kind: 'invalid', problem: 'choices[0] is not an object' };
      const delta = choice['delta'];
      if (isRecord(delta)) {
        const text = delta['content'];
        if (typeof text === 'string') content = text;
        else if (text !== undefined && text !== null) return { kind: 'invalid', problem: 'choices[0].delta.content is not a string' };
        const calls = delta['tool_calls'];
        if (Array.isArray(calls)) {
          const pieces: ToolCallPiece[] = [];
          for (const [position, call] of calls.entries()) {
            if (!isRecord(call)) return { kind: 'invalid', problem: `choices[0].delta.tool_calls[${String(position)}] is not an object` };
            pieces.push(readToolCall(call, position));
          }
          toolCalls = pieces;
        }
      }
      const reason = choice['finish_reason'];
      if (typeof reason === 'string' && reason !== '') finishReason = reason;
    }
  }
  return { kind: 'chunk', content, toolCalls, finishReason, usage: readUsage(json['usage']) };
}

function readToolCall(call: Record<string, unknown>, position: number): ToolCallPiece {
  const index = call['index'];
  const piece: ToolCallPiece = { index: typeof index === 'number' && Number.isInteger(index) && index >= 0 ? index : position };
  const id = call['id'];
  if (typeof id === 'string' && id !== '') piece.id = id;
  const fn = call['function'];
  if (isRecord(fn)) {
    const name = fn['name'];
    if (typeof name === 'string' && name !== '') piece.name = name;
    const args = fn['arguments'];
    if (typeof args === 'string' && args !== '') piece.arguments = args;
  }
  return piece;
}

function readUsage(value: unknown): ChunkUsage | undefined {
  if (!isRecord(value)) return undefined;
  const prompt = value['prompt_tokens'];
  const completion = value['completion_tokens'];
  const total = value['total_tokens'];
  const usage: ChunkUsage = {
    prompt_tokens: typeof prompt === 'number' && prompt >= 0 ? prompt : 0,
    completion_tokens: typeof completion === 'number' && completion >= 0 ? completion : 0,
  };
  if (typeof total === 'number' && total >= 0) usage.total_tokens = total;
  const details = value['prompt_tokens_details'];
  const cached = isRecord(details) ? details['cached_tokens'] : undefined;
  if (typeof cached === 'number' && cached >= 0) usage.prompt_tokens_details = { cached_tokens: cached };
  return usage;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
