// Stored conversations as the native chat uses them: the history sent with a new message (the
// latest turns, within a message and a character budget) and the two turns stored when the
// answer ends, a cancelled or failed answer with what was generated and its status.
import { SluiceError } from '../../errors/sluice-error.js';
import type { Principal } from '../../contract/principal.js';
import type { Config } from '../../config/config.js';
import type { ChatMessage } from '../../contract/provider.js';
import type { Generation } from '../../relay/generation.js';
import type { ConversationStore, MessageStatus } from '../../store/store.js';
import { collectAnswer } from '../../relay/collect-answer.js';

const titleChars = 80;

/**
 * The messages to send before the new one. A conversation id that does not exist yet is created
 * for the caller (clients may pick their own ids); one that belongs to someone else is a 404,
 * the same as a missing one, so ids cannot be probed.
 */
export async function loadHistory(conversations: ConversationStore, principal: Principal, conversationId: string, settings: Config['conversations'], newMessage: string, now: () => number): Promise<ChatMessage[]> {
  const conversation = await conversations.get(conversationId);
  if (conversation && conversation.userId !== principal.userId) throw notFound(conversationId);
  if (!conversation) {
    const at = now();
    await conversations.create({ id: conversationId, userId: principal.userId, title: newMessage.slice(0, titleChars), createdAt: at, updatedAt: at });
    return [];
  }
  if (settings.historyMessages === 0) return [];
  const stored = await conversations.messages(conversationId, { lastCount: settings.historyMessages });
  // An empty answer (one that failed before any text) is no turn: providers refuse empty content.
  const usable = stored.filter((message) => message.content !== '');
  const history: ChatMessage[] = [];
  let chars = 0;
  for (let index = usable.length - 1; index >= 0; index--) {
    const message = usable[index];
    if (!message) continue;
    chars += message.content.length;
    if (chars > settings.historyChars) break;
    history.unshift({ role: message.role, content: message.content });
  }
  return history;
}

const statusOf: Record<'completed' | 'cancelled' | 'error', MessageStatus> = { completed: 'complete', cancelled: 'cancelled', error: 'error' };

/** When the generation ends, stores the user's message and the answer (whatever of it exists). */
export function storeTurns(conversations: ConversationStore, generation: Generation, conversationId: string, userMessage: string, now: () => number, onError: (error: unknown) => void): void {
  void generation.done
    .then(async (summary) => {
      const at = now();
      const answer = collectAnswer(generation.events);
      await conversations.append(
        conversationId,
        [
          { role: 'user', content: userMessage, status: 'complete', createdAt: at },
          { role: 'assistant', content: answer.text, status: statusOf[summary.outcome], createdAt: at, generationId: generation.id },
        ],
        at,
      );
    })
    .catch(onError);
}

export function notFound(conversationId: string): SluiceError {
  return new SluiceError('conversation_not_found', { message: `No conversation ${conversationId} for this user.` });
}
