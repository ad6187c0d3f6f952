// What crosses Redis between nodes, checked on the way in (the writer was a Sluice node, but a
// foreign or damaged key must fail loudly, not be trusted): a generation's events and info as the
// mirror stored them, and the control messages a node sends to a generation's producing node.
import type { Logger } from '../../observability/logger.js';
import type { RedisConnections } from '../../redis/connection.js';
import { SluiceError } from '../../errors/sluice-error.js';
import type { StreamEvent, StreamEventType } from '../../contract/stream-event.js';
import type { GenerationInfo } from '../generation-registry.js';
import type { GenerationKeys } from './keys.js';

export type ControlMessage =
  | { type: 'cancel'; id: string; code: string; message: string }
  /** A follower on another node holds (or renews) a lease that keeps the generation alive as a subscriber would. */
  | { type: 'attach'; id: string; viewer: string }
  | { type: 'detach'; id: string; viewer: string };

/** Every event type, checked by the compiler: a new one cannot be forgotten here (it once was: `upstream-event`). */
const everyEventType: Readonly<Record<StreamEventType, true>> = { start: true, 'text-delta': true, 'tool-call-delta': true, 'upstream-event': true, usage: true, end: true, error: true };
const eventTypes: ReadonlySet<string> = new Set(Object.keys(everyEventType));

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One entry of a generation's log list; throws SluiceError internal_error when it is no stream event. */
export function parseEvent(raw: unknown): StreamEvent {
  const value: unknown = typeof raw === 'string' ? JSON.parse(raw) : undefined;
  if (!isRecord(value) || typeof value['type'] !== 'string' || !eventTypes.has(value['type'])) {
    throw new SluiceError('internal_error', { message: 'A generation log in Redis holds an entry that is not a stream event.' });
  }
  return value as unknown as StreamEvent;
}

/** The `info` field of a generation's meta hash; throws SluiceError internal_error when malformed. */
export function parseInfo(raw: string): GenerationInfo {
  const value: unknown = JSON.parse(raw);
  if (!isRecord(value) || typeof value['id'] !== 'string' || typeof value['ownerId'] !== 'string' || typeof value['model'] !== 'string' || typeof value['startedAt'] !== 'number' || (value['conversationId'] !== undefined && typeof value['conversationId'] !== 'string')) {
    throw new SluiceError('internal_error', { message: 'A generation\'s info in Redis is malformed.' });
  }
  const info: { -readonly [K in keyof GenerationInfo]: GenerationInfo[K] } = { id: value['id'], ownerId: value['ownerId'], model: value['model'], startedAt: value['startedAt'] };
  if (typeof value['conversationId'] === 'string') info.conversationId = value['conversationId'];
  return info;
}

/** A control message received on this node's channel; undefined when it is not one. */
export function parseControl(raw: string): ControlMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!isRecord(value) || typeof value['id'] !== 'string') return undefined;
  const id = value['id'];
  if (value['type'] === 'cancel' && typeof value['code'] === 'string' && typeof value['message'] === 'string') return { type: 'cancel', id, code: value['code'], message: value['message'] };
  if ((value['type'] === 'attach' || value['type'] === 'detach') && typeof value['viewer'] === 'string') return { type: value['type'], id, viewer: value['viewer'] };
  return undefined;
}

/** Sends `message` to `targetNode`'s control channel; resolves to how many subscribers got it (0: that node is gone). */
export async function publishControl(redis: RedisConnections, keys: GenerationKeys, targetNode: string, message: ControlMessage): Promise<number> {
  return redis.publish(keys.control(targetNode), JSON.stringify(message));
}

/**
 * Subscribes to `channel`; never rejects. A failure is only logged at debug level: for the
 * registry's channels a periodic re-read covers the gap, and the subscription is retried when
 * Redis is back.
 */
export async function subscribeQuietly(redis: RedisConnections, channel: string, logger: Logger): Promise<void> {
  try {
    await redis.subscribe(channel);
  } catch (error) {
    logger.debug({ err: error, channel }, 'redis generation registry: subscribe failed');
  }
}
