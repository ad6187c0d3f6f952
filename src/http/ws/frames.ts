// The WebSocket protocol of GET /api/ws, as zod schemas for what clients send and types for what
// the server sends. Every client frame is one JSON text frame with a `type`; a frame that fails
// validation gets an `error` frame naming the field, and the socket stays open.
import { z } from 'zod';
import { nativeChatBodySchema } from '../routes/native-chat.js';

/** The client's own name for one chat on this socket; it tags every frame of that chat. */
const chatId = z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1 to 64 characters of A-Z, a-z, 0-9 and . _ : -');

export const clientFrameSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({
      type: z.literal('chat'),
      id: chatId,
      message: z.string().optional(),
      messages: z.array(z.unknown()).optional(),
      model: z.string().optional(),
      conversationId: z.string().optional(),
      system: z.string().optional(),
      params: z.record(z.string(), z.unknown()).optional(),
    }),
    z.strictObject({ type: z.literal('cancel'), id: chatId }),
    /** Continues a generation after `lastEventId` (`<generationId>:<seq>`), tagged with `id`. */
    z.strictObject({ type: z.literal('resume'), id: chatId, lastEventId: z.string().regex(/^[A-Za-z0-9_-]{1,64}:\d{1,9}$/, 'must be an event id such as AbC123:17') }),
    z.strictObject({ type: z.literal('ping') }),
  ],
  { error: (issue) => (issue.code === 'invalid_union' ? 'type must be one of chat, cancel, resume, ping' : undefined) },
);

export type ClientFrame = z.infer<typeof clientFrameSchema>;

/** The chat frame's body, checked exactly as POST /api/chat checks its body. */
export { nativeChatBodySchema };

/** Frames the server sends. `eventId` is the same `<generationId>:<seq>` the SSE routes use. */
export type ServerFrame =
  | { type: 'meta' | 'delta' | 'upstream' | 'usage' | 'done' | 'error'; id: string; eventId: string; data: Record<string, unknown> }
  /** A resume was accepted; `finished` when there was nothing after lastEventId and never will be. */
  | { type: 'resumed'; id: string; generationId: string; finished: boolean }
  /** A frame the server could not take, or a chat that failed before it started. */
  | { type: 'error'; id?: string; code: string; message: string; param?: string }
  | { type: 'pong' };
