// What crosses Redis between the nodes of a cluster hub: the envelopes on the events channel (a
// push, a disconnect), the replies counting the connections each node reached, and what the
// hub stores (messages, connection infos). Checked on the way in: another node may run another
// version.
import { z } from 'zod';
import { SluiceError } from '../../errors/sluice-error.js';
import type { PushTarget } from '../hub.js';

export const pushMessageSchema = z.object({ id: z.string(), event: z.string(), json: z.string(), pushedAt: z.number() });
const targetSchema = z.union([z.object({ users: z.array(z.string()) }), z.object({ all: z.literal(true) })]);
export const envelopeSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('push'), origin: z.string(), request: z.string(), target: targetSchema, message: pushMessageSchema }),
  z.object({ kind: z.literal('disconnect'), origin: z.string(), request: z.string(), userId: z.string() }),
]);
export const replySchema = z.object({ request: z.string(), node: z.string(), count: z.number().int().nonnegative() });
export const connectionInfoSchema = z.object({ id: z.string(), userId: z.string(), transport: z.enum(['sse', 'ws']), node: z.string(), openedAt: z.number() });

/** A message on the events channel: a push to deliver, or a user to disconnect; each node replies with its count. */
export type Envelope = z.infer<typeof envelopeSchema>;
/** A node's answer to an envelope: how many of its connections it reached. */
export type Reply = z.infer<typeof replySchema>;

/** JSON.parse, with undefined for text that is not JSON (which the schema then refuses). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The push message's JSON after its id (`"event":…,"json":…,"pushedAt":…}`): the push script
 * prepends `{"id":"<id>",` once it has taken the id.
 */
export function pushMessageTail(event: string, json: string, pushedAt: number): string {
  return JSON.stringify({ event, json, pushedAt }).slice(1);
}

/** A push envelope's JSON up to its message (`…,"message":`): the push script appends the message and `}`. */
export function pushEnvelopeHead(origin: string, request: string, target: PushTarget): string {
  return `${JSON.stringify({ kind: 'push', origin, request, target }).slice(0, -1)},"message":`;
}

export function disconnectEnvelope(origin: string, request: string, userId: string): string {
  return JSON.stringify({ kind: 'disconnect', origin, request, userId });
}

/** The hub's shared store is away: what every shared call rejects with. */
export function hubUnavailable(cause?: unknown): SluiceError {
  return new SluiceError('store_unavailable', {
    message: 'The hub\'s shared store (Redis) is unavailable; pushes, replays and connection lists across nodes are paused until it is back.',
    ...(cause === undefined ? {} : { cause }),
  });
}
