// The WebSocket protocol of GET /api/ws, as zod schemas for what clients send and types for what
// the server sends, and reading a frame off the socket. Every client frame is one JSON text frame
// with a `type`; a frame that fails validation gets an `error` frame naming the field, and the
// socket stays open.
import type { RawData } from 'ws';
import { z } from 'zod';
import { SluiceError, toSluiceError } from '../../errors/sluice-error.js';
import type { PushMessage } from '../../hub/hub.js';
import { nativeChatBodySchema, type NativeChatBody } from '../routes/native-chat.js';
import { parseWith } from '../validate.js';

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

/** Reads one client frame, or throws `invalid_frame` naming what is wrong with it. */
export function readClientFrame(raw: RawData, isBinary: boolean): ClientFrame {
  if (isBinary) throw new SluiceError('invalid_frame', { message: 'Frames are JSON text; binary frames are not accepted.' });
  let value: unknown;
  try {
    value = JSON.parse(rawText(raw));
  } catch (error) {
    throw new SluiceError('invalid_frame', { message: `The frame is not valid JSON (${(error as Error).message}).` });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SluiceError('invalid_frame', { message: 'A frame is a JSON object with a type: chat, cancel, resume or ping.' });
  return asFrameError(() => parseWith(clientFrameSchema, value));
}

/** A chat frame's fields checked again as a chat body (POST /api/chat's rules), naming the field. */
export function chatBodyOf(frame: Extract<ClientFrame, { type: 'chat' }>): NativeChatBody {
  return asFrameError(() => parseWith(nativeChatBodySchema, Object.fromEntries(Object.entries(frame).filter(([key]) => key !== 'type' && key !== 'id'))));
}

/** The chat id of a frame, when it is readable, so that its error frame is tagged. */
export function frameIdOf(raw: RawData): string | undefined {
  try {
    const value = JSON.parse(rawText(raw)) as { id?: unknown };
    return typeof value.id === 'string' && value.id.length <= 64 ? value.id : undefined;
  } catch {
    return undefined;
  }
}

/** The last push frame built: a broadcast reaches every socket one after another, so it is built once. */
let lastPushFrame: { message: PushMessage; bytes: Buffer } | undefined;

/**
 * A push as the UTF-8 bytes of its WebSocket text frame's payload, built once per message and the
 * same Buffer for every socket: `ws.send(bytes, { binary: false })` sends it as a text frame
 * without encoding the text again per socket (docs/decisions/0028-websocket-push-bytes.md). The
 * data is already JSON text, embedded as it is; JSON.stringify leaves no lone surrogate in it, so
 * the bytes are valid UTF-8 as a text frame requires. Callers must not write into the Buffer.
 */
export function pushFrame(message: PushMessage): Buffer {
  if (lastPushFrame?.message !== message) {
    const text = `{"type":"push","eventId":${JSON.stringify(message.id)},"event":${JSON.stringify(message.event)},"data":${message.json}}`;
    lastPushFrame = { message, bytes: Buffer.from(text, 'utf8') };
  }
  return lastPushFrame.bytes;
}

/** Validation failures of a frame are `invalid_frame`, with the same field and message. */
function asFrameError<T>(validate: () => T): T {
  try {
    return validate();
  } catch (error) {
    const failure = toSluiceError(error);
    if (failure.code !== 'invalid_request') throw error;
    throw new SluiceError('invalid_frame', { message: failure.message, ...(failure.param !== undefined ? { param: failure.param } : {}) });
  }
}

function rawText(raw: RawData): string {
  if (Buffer.isBuffer(raw)) return raw.toString('utf8');
  if (Array.isArray(raw)) return Buffer.concat(raw).toString('utf8');
  return Buffer.from(raw).toString('utf8');
}
