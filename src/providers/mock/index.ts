// The built-in `mock` provider: a deterministic demo model with no network, so a fresh install
// streams something real (Chinese and emoji included, to exercise multi-byte handling end to end).
import { setTimeout as sleep } from 'node:timers/promises';
import type { ResolvedMockProvider } from './config.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { estimatePromptTokens, estimateTokens } from '../../contract/usage-estimate.js';
import type { CallContext, ChatMessage, ChatRequest, ProviderAdapter } from '../../contract/provider.js';
import { splitIntoChunks, demoAnswer } from './answer.js';

export function createMockAdapter(config: ResolvedMockProvider): ProviderAdapter {
  async function* stream(request: ChatRequest, context: CallContext): AsyncGenerator<readonly StreamEvent[]> {
    yield [{ type: 'start', upstreamModel: request.model }];
    const text = demoAnswer(lastUserText(request.messages));
    const pieces = context.mode === 'stream' ? splitIntoChunks(text, config.chunkCount) : [text];
    for (const piece of pieces) {
      if (context.mode === 'stream' && config.delayMs > 0) await sleep(config.delayMs, undefined, { signal: context.signal });
      context.signal.throwIfAborted();
      yield [{ type: 'text-delta', text: piece }];
    }
    const promptTokens = estimatePromptTokens(request.messages);
    const completionTokens = estimateTokens(text);
    yield [
      { type: 'usage', usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, estimated: false } },
      { type: 'end', finishReason: 'stop' },
    ];
  }
  return { id: config.id, type: 'mock', models: config.models ?? ['sluice-demo'], stream, close: async () => {} };
}

function lastUserText(messages: readonly ChatMessage[]): string {
  for (let index = messages.length - 1; index >= 0; index--) {
    const message = messages[index];
    if (message?.role === 'user' && typeof message.content === 'string') return message.content;
  }
  return '';
}
