// Who is calling: what every credential (API key, JWT, ticket, or none) resolves to before a route
// runs. Routes, limits and usage read only this, never the credential itself.

export type Role = 'user' | 'service' | 'admin';

export const roles: readonly Role[] = ['user', 'service', 'admin'];

/**
 * Limits for one key or one user. An absent field means no limit of that kind.
 * Token limits count prompt plus completion tokens, charged when a generation ends.
 */
export interface Limits {
  readonly requestsPerMinute?: number;
  readonly tokensPerMinute?: number;
  readonly concurrentStreams?: number;
  /** Tokens per UTC calendar day. */
  readonly dailyTokens?: number;
  /** Tokens per UTC calendar month. */
  readonly monthlyTokens?: number;
  /**
   * Money per UTC calendar day, in whole micro-units of the requested model's price currency
   * (contract/cost.ts). Charged with the generation's cost when it ends; unpriced models cost
   * nothing.
   */
  readonly dailyBudgetMicros?: number;
  /** Money per UTC calendar month, in micro-units, likewise. */
  readonly monthlyBudgetMicros?: number;
}

export const limitNames = ['requestsPerMinute', 'tokensPerMinute', 'concurrentStreams', 'dailyTokens', 'monthlyTokens'] as const satisfies readonly (keyof Limits)[];
export type LimitName = (typeof limitNames)[number];

/** The budget limits, named as operators write them (`dailyBudget`), held in micro-units. */
export const budgetNames = ['dailyBudget', 'monthlyBudget'] as const;
export type BudgetName = (typeof budgetNames)[number];

/** `limits` without its budgets: what is stored as a key's limits JSON and shown as its limits. */
export function countingLimits(limits: Limits): Limits {
  return Object.fromEntries(Object.entries(limits).filter(([name]) => name !== 'dailyBudgetMicros' && name !== 'monthlyBudgetMicros'));
}

export interface Principal {
  /** The end user the request is for (after a service credential named one). */
  readonly userId: string;
  readonly role: Role;
  /** How the caller proved who it is. */
  readonly via: 'key' | 'jwt' | 'ticket' | 'anonymous';
  /** The API key's id, when the credential was (or the ticket came from) an API key. */
  readonly keyId?: string;
  /** The key's own limits; empty for JWT and anonymous callers. */
  readonly keyLimits: Limits;
  /** When a service credential acts for an end user: the service's own user id. */
  readonly actingAs?: string;
  /**
   * Model patterns (`chat`, `spark-*`, `openai/*`) the credential may ask for, from the key's
   * `models` or the JWT's models claim; absent: every model. Never empty. A service credential
   * acting for an end user keeps its own list.
   */
  readonly allowedModels?: readonly string[];
}

/**
 * The user id to hand to providers (Spark's uid, signed-http's userId field): the end user's,
 * except for an anonymous caller (auth mode none) that named nobody.
 */
export function upstreamUserId(principal: Principal): string | undefined {
  return principal.via === 'anonymous' && principal.actingAs === undefined ? undefined : principal.userId;
}
