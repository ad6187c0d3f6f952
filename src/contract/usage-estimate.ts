// Token estimates for when a provider gives no counts (a cancelled stream, a provider without
// usage). Rough by design and always marked `estimated: true`: CJK characters count one token
// each, other text one token per four characters, as common BPE vocabularies roughly do.
import type { ChatMessage } from './provider.js';

const cjk = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]/g;

export function estimateTokens(text: string): number {
  if (text.length === 0) return 0;
  const cjkCount = text.match(cjk)?.length ?? 0;
  return cjkCount + Math.ceil((text.length - cjkCount) / 4);
}

export function estimatePromptTokens(messages: readonly ChatMessage[]): number {
  let total = 0;
  for (const message of messages) {
    // About four tokens of framing per message, as OpenAI's cookbook counts them.
    total += 4;
    const content = message.content;
    if (typeof content === 'string') total += estimateTokens(content);
    else if (content !== null) {
      for (const part of content) {
        const text = part['text'];
        if (typeof text === 'string') total += estimateTokens(text);
      }
    }
  }
  return total;
}
