// The one rule for what an end-user id may look like. Ids travel in headers (X-Sluice-User), the
// OpenAI body `user` field, logs, metrics labels and database rows, so the alphabet is kept to
// characters that need no escaping in any of them.

/** Most user ids a gateway sees are e-mail addresses, UUIDs or `tenant:id` pairs; 128 fits all. */
export const maxUserIdLength = 128;

const userIdPattern = /^[A-Za-z0-9._@:-]{1,128}$/;

/** True when `value` is 1 to 128 characters of `A-Z a-z 0-9 . _ @ : -`. */
export function isValidUserId(value: string): boolean {
  return userIdPattern.test(value);
}

/** Explains, without echoing the value, why `value` is not a valid user id. */
export function describeInvalidUserId(value: string): string {
  if (value.length === 0) return 'it is empty';
  if (value.length > maxUserIdLength) return `it is ${value.length} characters long (at most ${maxUserIdLength})`;
  return 'it contains a character other than letters, digits and . _ @ : -';
}
