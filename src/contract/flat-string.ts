// Strings kept for as long as a stream lives, made flat once. V8 keeps a string built by
// concatenation (a template literal, `+`, or Node's crypto.randomUUID, which joins twenty hex
// pieces) as a tree of its pieces, about 32 bytes a node, until something reads its characters:
// a UUID kept as such a tree takes about 490 bytes of heap, flat about 70. Sluice keeps a few such
// strings per request (lease ids, an encoder's fixed text around each chunk, counter key prefixes),
// and a node holding thousands of slow streams keeps them thousands of times
// (docs/decisions/0032-what-a-held-stream-keeps.md).

/**
 * `text`, flattened in place: reading one character makes V8 copy a concatenated string into one
 * piece and drop the tree, which the next garbage collection frees. The same string comes back.
 */
export function flat(text: string): string {
  text.charCodeAt(0);
  return text;
}
