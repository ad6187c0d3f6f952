// Keeps configured secrets out of text that came from a provider before it reaches a client or a log.

/** Replaces every occurrence of each secret (4 characters or longer) with `[redacted]`. */
export function scrub(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) if (secret.length >= 4) result = result.split(secret).join('[redacted]');
  return result;
}
