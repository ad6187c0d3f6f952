// The whole answer of a finished (or cut) generation, from its log: text, tool calls assembled
// per index, finish reason and usage. One-response encoders and stored conversations read this.
import type { FinishReason, StreamEvent, Usage } from '../contract/stream-event.js';

export interface CollectedToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface CollectedAnswer {
  text: string;
  /** In index order. */
  toolCalls: CollectedToolCall[];
  /** Absent when the generation did not finish (cancelled or failed). */
  finishReason?: FinishReason;
  usage?: Usage;
}

export function collectAnswer(events: readonly StreamEvent[]): CollectedAnswer {
  let text = '';
  let finishReason: FinishReason | undefined;
  let usage: Usage | undefined;
  const calls = new Map<number, CollectedToolCall>();
  for (const event of events) {
    switch (event.type) {
      case 'text-delta':
        text += event.text;
        break;
      case 'tool-call-delta': {
        const call = calls.get(event.index) ?? { id: '', name: '', arguments: '' };
        if (event.id) call.id = event.id;
        if (event.name) call.name += event.name;
        if (event.argumentsDelta) call.arguments += event.argumentsDelta;
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
  const answer: CollectedAnswer = { text, toolCalls: [...calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call) };
  if (finishReason !== undefined) answer.finishReason = finishReason;
  if (usage !== undefined) answer.usage = usage;
  return answer;
}
