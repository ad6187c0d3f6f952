// GET /api/conversations, GET /api/conversations/:id, DELETE /api/conversations/:id: the caller's
// own stored history. Another user's conversation is a 404, the same as a missing one.
import { z } from 'zod';
import type { ConversationRecord, ConversationStore } from '../../store/store.js';
import { callerOf } from '../request-context.js';
import { sendJson } from '../respond.js';
import type { RouteSpec } from '../router.js';
import { parseWith } from '../validate.js';
import { notFound } from './conversation-history.js';

const listQuerySchema = z.strictObject({
  limit: z
    .string()
    .regex(/^\d{1,4}$/, 'must be a whole number from 1 to 1000')
    .transform(Number)
    .refine((value) => value >= 1 && value <= 1000, 'must be a whole number from 1 to 1000')
    .optional(),
});

function publicConversation(record: ConversationRecord): Record<string, unknown> {
  return { id: record.id, title: record.title ?? null, createdAt: new Date(record.createdAt).toISOString(), updatedAt: new Date(record.updatedAt).toISOString() };
}

export function createConversationRoutes(dependencies: { conversations: ConversationStore }): RouteSpec[] {
  const { conversations } = dependencies;

  async function owned(userId: string, id: string): Promise<ConversationRecord> {
    const record = await conversations.get(id);
    if (!record || record.userId !== userId) throw notFound(id);
    return record;
  }

  return [
    {
      method: 'GET',
      pattern: '/api/conversations',
      async handler(context, _request, response) {
        const query = parseWith(listQuerySchema, Object.fromEntries(context.query));
        const records = await conversations.list(callerOf(context).userId, { limit: query.limit ?? 100 });
        sendJson(response, 200, { object: 'list', data: records.map(publicConversation) });
      },
    },
    {
      method: 'GET',
      pattern: '/api/conversations/:id',
      async handler(context, _request, response, params) {
        const record = await owned(callerOf(context).userId, params['id'] ?? '');
        const messages = await conversations.messages(record.id);
        sendJson(response, 200, {
          ...publicConversation(record),
          messages: messages.map((message) => ({
            seq: message.seq,
            role: message.role,
            content: message.content,
            status: message.status,
            createdAt: new Date(message.createdAt).toISOString(),
            generationId: message.generationId ?? null,
          })),
        });
      },
    },
    {
      method: 'DELETE',
      pattern: '/api/conversations/:id',
      async handler(context, _request, response, params) {
        const record = await owned(callerOf(context).userId, params['id'] ?? '');
        await conversations.delete(record.id);
        sendJson(response, 200, { id: record.id, deleted: true });
      },
    },
  ];
}
