// The Redis keys and channels of the cluster hub, under one deployment's key prefix.
export interface HubKeys {
  /** String: the hub-wide push sequence (INCR). */
  readonly sequence: string;
  /** Sorted set of retained broadcast ids, scored by id. */
  readonly broadcast: string;
  /** Prefix of `message:<id>` and `user:<userId>`: the push script builds those keys from it. */
  readonly logs: string;
  /** Sorted set of the ids retained for one user, scored by id. */
  readonly userLog: (userId: string) => string;
  /** String: one retained message's JSON, with the retention age as its TTL. */
  readonly message: (id: string) => string;
  /** Hash of a node's connections (id → ConnectionInfo JSON), living as long as its presence. */
  readonly connections: (node: string) => string;
  /** Channel every node listens on: pushes and disconnects. */
  readonly eventsChannel: string;
  /** Channel of a node's replies (how many connections it reached). */
  readonly replyChannel: (node: string) => string;
}

export function hubKeys(keyPrefix: string): HubKeys {
  return {
    sequence: `${keyPrefix}hub:seq`,
    broadcast: `${keyPrefix}hub:broadcast`,
    logs: `${keyPrefix}hub:`,
    userLog: (userId) => `${keyPrefix}hub:user:${userId}`,
    message: (id) => `${keyPrefix}hub:message:${id}`,
    connections: (node) => `${keyPrefix}hub:node:${node}:connections`,
    eventsChannel: `${keyPrefix}hub:events`,
    replyChannel: (node) => `${keyPrefix}hub:replies:${node}`,
  };
}
