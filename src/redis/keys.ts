// Key names that Redis Cluster can serve. A Lua script or a transaction (MULTI, or a pipeline
// sent as one) may touch keys of one hash slot only, and Redis Cluster hashes only the part of a
// key between the first `{` and the next `}` when there is one: keys sharing that hash tag share
// a slot. Every key that a script or a transaction touches together with another is built here,
// with the same tag (docs/decisions/0019-redis-cluster.md); a key used alone needs none.
//
// The key prefix stays first (so a prefix still names a deployment's keys, for SCAN and for ACL
// key patterns such as `~sluice:*`), and it must not hold braces itself (config checks that).

/**
 * `<prefix>{<tag>}<rest>`: a key in the slot of `tag`. Keys made with the same prefix and tag are
 * in one slot, whatever their rest.
 */
export function slotKey(prefix: string, tag: string, rest = ''): string {
  return `${prefix}{${tag}}${rest}`;
}

/** The hash tag of a key as Redis Cluster reads it (the whole key when it has none). */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  // `{}` or an unclosed brace: Redis hashes the whole key.
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}
