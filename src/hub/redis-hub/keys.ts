// The Redis keys and channels of the cluster hub, under one deployment's key prefix. The push
// script touches the sequence, the logs, the message and the events channel at once, so they all
// carry the hash tag `{hub}` (one Redis Cluster slot); the connection lists live as long as their
// node's presence, so they carry the presence's tag (docs/decisions/0019-redis-cluster.md).
import { slotKey } from '../../redis/keys.js';
import { presenceOwnedKey } from '../../redis/node-presence.js';

export interface HubKeys {
  /** String: the hub-wide push sequence (INCR). */
  readonly sequence: string;
  /** Sorted set of retained broadcasts: member the message's key suffix (its request id), score the push id. */
  readonly broadcast: string;
  /** Sorted set of what one user was sent, as the broadcast log. */
  readonly userLog: (userId: string) => string;
  /** String: one retained message's JSON, with the retention age as its TTL, named by its push request's id. */
  readonly message: (request: string) => string;
  /** Hash of a node's connections (id → ConnectionInfo JSON), living as long as its presence. */
  readonly connections: (node: string) => string;
  /** Channel every node listens on: pushes and disconnects (in the `{hub}` slot, for the push script). */
  readonly eventsChannel: string;
  /** Channel of a node's replies (how many connections it reached). */
  readonly replyChannel: (node: string) => string;
}

const hubTag = 'hub';

export function hubKeys(keyPrefix: string): HubKeys {
  return {
    sequence: slotKey(keyPrefix, hubTag, ':seq'),
    broadcast: slotKey(keyPrefix, hubTag, ':broadcast'),
    userLog: (userId) => slotKey(keyPrefix, hubTag, `:user:${userId}`),
    message: (request) => slotKey(keyPrefix, hubTag, `:message:${request}`),
    connections: (node) => presenceOwnedKey(keyPrefix, `hub-connections:${node}`),
    eventsChannel: slotKey(keyPrefix, hubTag, ':events'),
    // Alone in its own slot: only this node listens, and only single replies cross it.
    replyChannel: (node) => `${keyPrefix}hub:replies:${node}`,
  };
}
