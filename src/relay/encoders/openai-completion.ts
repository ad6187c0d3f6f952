// Aggregates a finished generation's events into one OpenAI `chat.completion` object.
import type { FinishReason, StreamEvent, Usage } from '../stream-event.js';

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
  let text = '';
  let finishReason: FinishReason = 'stop';
  let usage: Usage = { promptTokens: 0, completionTokens: 0, totalTokens: 0, estimated: true };
  const calls = new Map<number, ToolCall>();
  for (const event of events) {
    switch (event.type) {
      case 'text-delta':
        text += event.text;
        break;
      case 'tool-call-delta': {
        const call = calls.get(event.index) ?? { id: '', type: 'function', function: { name: '', arguments: '' } };
        if (event.id) call.id = event.id;
        if (event.name) call.function.name += event.name;
        if (event.argumentsDelta) call.function.arguments += event.argumentsDelta;
        calls.set(event.index, call);
        break;
      }
      case 'usage':
        usage = event.usage;
        break;
      case 'end':
        finishReason = event.finishReason;
        break;
      default:
        break;
    }
  }
  const toolCalls = [...calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call);
  const message: ChatCompletion['choices'][0]['message'] = { role: 'assistant', content: text === '' && toolCalls.length > 0 ? null : text, refusal: null };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  return {
    id: options.id,
    object: 'chat.completion',
    created: options.created,
    model: options.model,
    system_fingerprint: null,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }],
    usage: { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens, total_tokens: usage.totalTokens },
  };
}
