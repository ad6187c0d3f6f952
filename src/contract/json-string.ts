// A text as a JSON string literal, for the encoders that write a token's text between fixed
// pieces of JSON: each text delta of every stream goes through here, on its way to the client and,
// on a cluster node, to the generation's copy in Redis. `JSON.stringify(text)` enters V8's JSON
// serialiser for every token; most tokens hold nothing it would escape, and for those the literal
// is the text between two quotes (docs/decisions/0043-token-text-as-a-json-string.md).

/**
 * The code units JSON.stringify escapes in a string (ECMAScript's QuoteJSONString): the quote,
 * the backslash, the controls below U+0020, and surrogates (a lone one is written as \uXXXX; a
 * pair is written as it is, but telling the two apart is left to JSON.stringify).
 */
const escaped = /["\\\u0000-\u001f\ud800-\udfff]/;

/** Exactly `JSON.stringify(text)`, without the serialiser when `text` has nothing to escape. */
export function jsonString(text: string): string {
  return escaped.test(text) ? JSON.stringify(text) : `"${text}"`;
}
