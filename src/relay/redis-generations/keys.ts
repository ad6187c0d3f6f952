// The Redis keys and channels of the generation registry, under one deployment's key prefix.
// A generation's ids are hash-tagged (`{id}`), so all of its keys and its growth channel share a
// Redis Cluster slot (the append script touches them at once); the presence key is the presence's own.
import { nodeKey } from '../../redis/node-presence.js';

export interface GenerationKeys {
  /**
   * Hash: `info` (GenerationInfo JSON), `node` (the producing node's id), `finished` ('0' or '1');
   * for a format-2 log also `log` ('2') and `length` (its event count). See log-format.ts.
   */
  readonly meta: (id: string) => string;
  /** The generation's log: format 1, an event's JSON per entry (the index is the seq); format 2, a batch per entry (log-format.ts). */
  readonly events: (id: string) => string;
  /** Channel: the log's new length, published with every batch appended. */
  readonly grew: (id: string) => string;
  /** The presence heartbeat key of src/redis/node-presence.ts. */
  readonly presence: (nodeId: string) => string;
  /** Channel of a node's control messages (cancel, attach, detach). */
  readonly control: (nodeId: string) => string;
}

export function generationKeys(prefix: string): GenerationKeys {
  return {
    meta: (id) => `${prefix}generation:{${id}}`,
    events: (id) => `${prefix}generation:{${id}}:events`,
    grew: (id) => `${prefix}generation:{${id}}:grew`,
    presence: (nodeId) => nodeKey(prefix, nodeId),
    control: (nodeId) => `${prefix}generation-node:${nodeId}:control`,
  };
}
