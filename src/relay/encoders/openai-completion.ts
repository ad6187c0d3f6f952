// Aggregates a finished generation's events into one OpenAI `chat.completion` object.
import type { FinishReason, StreamEvent, Usage } from '../../contract/stream-event.js';
import { collectAnswer } from '../collect-answer.js';

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  system_fingerprint: null;
  choices: [
    {
      index: 0;
      message: { role: 'assistant'; content: string | null; refusal: null; tool_calls?: ToolCall[] };
      logprobs: null;
      finish_reason: FinishReason;
    },
  ];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export function aggregateCompletion(events: readonly StreamEvent[], options: { id: string; created: number; model: string }): ChatCompletion {
  const answer = collectAnswer(events);
  const usage: Usage = answer.usage ?? { promptTokens: 0, completionTokens: 0, totalTokens: 0, estimated: true };
  const toolCalls: ToolCall[] = answer.toolCalls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } }));
  const message: ChatCompletion['choices'][0]['message'] = { role: 'assistant', content: answer.text === '' && toolCalls.length > 0 ? null : answer.text, refusal: null };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  return {
    id: options.id,
    object: 'chat.completion',
    created: options.created,
    model: options.model,
    system_fingerprint: null,
    choices: [{ index: 0, message, logprobs: null, finish_reason: answer.finishReason ?? 'stop' }],
    usage: { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens, total_tokens: usage.totalTokens },
  };
}
