// The one storage interface for keys, usage, conversations and stored responses. SQLite (the
// default, embedded) and PostgreSQL implement it with the same contract tests; routes and the CLI
// see only this.
import type { Limits, Role } from '../contract/principal.js';

/** All times are milliseconds since the epoch. */
export interface ApiKeyRecord {
  /** Short public id, part of the key itself (`sk-sluice-<id>-<secret>`); safe to show and log. */
  readonly id: string;
  readonly userId: string;
  readonly role: Role;
  /** A label for people (`ci`, `web front end`). */
  readonly name?: string;
  /** Lowercase hex SHA-256 of the secret part; the secret itself is never stored. */
  readonly secretHash: string;
  readonly limits: Limits;
  /** Model patterns the key may use (`chat`, `spark-*`); absent: every model. */
  readonly models?: readonly string[];
  readonly createdAt: number;
  readonly expiresAt?: number;
  readonly revokedAt?: number;
}

export type UsageOutcome = 'completed' | 'cancelled' | 'error' | 'refused';

/** One row per generation (or per refused request). */
export interface UsageRecord {
  readonly at: number;
  readonly userId: string;
  readonly keyId?: string;
  readonly generationId?: string;
  /** The provider id that answered (empty for a refusal before routing). */
  readonly provider: string;
  /** The model name the client asked for. */
  readonly model: string;
  readonly upstreamModel?: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly totalTokens: number;
  /** True when Sluice estimated the counts (the provider gave none, or the stream was cut). */
  readonly estimated: boolean;
  readonly timeToFirstTokenMs?: number;
  readonly durationMs: number;
  readonly outcome: UsageOutcome;
  readonly errorCode?: string;
  /** The API surface the request came through (`chat-completions`, `native`, `responses`, …). */
  readonly route?: string;
  /** The pool deployment that served (`provider/model`). */
  readonly deployment?: string;
  /** The provider key that served (`provider#n`), never the key itself. */
  readonly providerKeyId?: string;
  /** Upstream attempts made, the serving one included. */
  readonly attempts?: number;
  /**
   * What the generation cost, in whole micro-units of `currency` (contract/cost.ts); absent, with
   * `currency`, when the model has no price. Computed from the (possibly estimated) tokens.
   */
  readonly costMicros?: number;
  readonly currency?: string;
}

export type UsageGroup = 'user' | 'key' | 'model' | 'deployment' | 'day';

export interface UsageQuery {
  /** Inclusive. */
  readonly from: number;
  /** Exclusive. */
  readonly to: number;
  readonly userId?: string;
  readonly keyId?: string;
  readonly model?: string;
  /** Rows are grouped by these, in this order; none gives one total row. */
  readonly groupBy: readonly UsageGroup[];
}

export interface UsageAggregate {
  readonly userId?: string;
  readonly keyId?: string;
  readonly model?: string;
  /** The deployment that served (`provider/model`); absent for rows that name none. */
  readonly deployment?: string;
  /** UTC day, `YYYY-MM-DD`. */
  readonly day?: string;
  readonly requests: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly totalTokens: number;
  /** Rows whose counts were estimated. */
  readonly estimatedRequests: number;
  readonly completed: number;
  readonly cancelled: number;
  readonly errors: number;
  readonly refused: number;
  /**
   * The summed cost in micro-units of `currency`. Every aggregate is also split by currency, so a
   * sum never mixes two; rows of unpriced models form the group without a currency, at 0.
   */
  readonly costMicros: number;
  readonly currency?: string;
}

/** Which usage rows the request log shows (GET /admin/requests); every filter is optional. */
export interface RequestQuery {
  /** At most this many rows, newest first. */
  readonly limit: number;
  /** Inclusive, ms since the epoch. */
  readonly from?: number;
  /** Exclusive, ms since the epoch. */
  readonly to?: number;
  readonly userId?: string;
  readonly keyId?: string;
  readonly model?: string;
  readonly outcome?: UsageOutcome;
}

/** The upper bounds (ms, inclusive) of the time-to-first-token bins the timeline counts; a last bin takes the rest. */
export const ttftBinBoundsMs: readonly number[] = Object.freeze([25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10_000, 30_000, 60_000]);

/** Usage over equal time buckets, for the console's charts (GET /admin/overview). */
export interface UsageTimelineQuery {
  /** Inclusive, ms since the epoch. */
  readonly from: number;
  /** Exclusive. */
  readonly to: number;
  /** The width of one bucket, ms. */
  readonly bucketMs: number;
}

export interface UsageTimelineBucket {
  /** The bucket's first millisecond. */
  readonly start: number;
  readonly requests: number;
  readonly totalTokens: number;
  /** Rows with outcome `error` or `refused`. */
  readonly failures: number;
  /**
   * How many rows had their time to first token in each bin of {@link ttftBinBoundsMs} (one more
   * entry than bounds: the last counts what is above the last bound).
   */
  readonly ttftBins: readonly number[];
}

export interface UsageTimeline {
  /** Every bucket of the range, oldest first, empty ones included. */
  readonly buckets: readonly UsageTimelineBucket[];
  /** Rows with an error code in the range, by code. */
  readonly errorsByCode: Readonly<Record<string, number>>;
}

/** A request's text as the request log keeps it. */
export interface RequestText {
  readonly generationId: string;
  readonly at: number;
  readonly userId: string;
  /** JSON text of the messages sent. */
  readonly prompt: string;
  readonly answer: string;
}

/** How one provider has answered over a time range (GET /admin/providers). */
export interface ProviderUsageStats {
  readonly provider: string;
  readonly requests: number;
  /** Rows with outcome `error`. */
  readonly errors: number;
  /** Mean time to first token of the rows that had one, ms; null when none did. */
  readonly meanTimeToFirstTokenMs: number | null;
  readonly meanDurationMs: number;
  /** When the newest error happened (ms since the epoch), and its code. */
  readonly lastErrorAt: number | null;
  readonly lastErrorCode: string | null;
}

export interface RequestLogStore {
  /** Several entries in one statement. */
  recordMany(entries: readonly RequestText[]): Promise<void>;
  /** The entries of these generations that exist. */
  get(generationIds: readonly string[]): Promise<RequestText[]>;
  /** Deletes entries older than `before` (ms since the epoch); how many. */
  prune(before: number): Promise<number>;
}

export interface ConversationRecord {
  readonly id: string;
  readonly userId: string;
  readonly title?: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export type MessageStatus = 'complete' | 'cancelled' | 'error';

export interface ConversationMessage {
  /** 0, 1, 2 … within the conversation, in the order the turns happened. */
  readonly seq: number;
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
  readonly status: MessageStatus;
  readonly createdAt: number;
  readonly generationId?: string;
}

export interface KeyStore {
  create(record: ApiKeyRecord): Promise<void>;
  /**
   * Stores the record only if the store holds no key at all (revoked ones count); true when it
   * did. Atomic across every process sharing the database: of several calls racing on an empty
   * store exactly one returns true, whether their records share an id or not, and the others
   * store nothing and throw nothing. For the first admin key, installed by whichever node starts
   * first.
   */
  createIfEmpty(record: ApiKeyRecord): Promise<boolean>;
  get(id: string): Promise<ApiKeyRecord | undefined>;
  /** Newest first; revoked keys included (they show `revokedAt`). */
  list(filter?: { userId?: string }): Promise<ApiKeyRecord[]>;
  /** Marks the key revoked at `at`; false when there is no such key or it was already revoked. */
  revoke(id: string, at: number): Promise<boolean>;
  count(): Promise<number>;
}

export interface UsageStore {
  record(row: UsageRecord): Promise<void>;
  /** Several rows in one statement and transaction (the gateway writes usage in batches). */
  recordMany(rows: readonly UsageRecord[]): Promise<void>;
  aggregate(query: UsageQuery): Promise<UsageAggregate[]>;
  /** The newest rows first (at most `limit`), optionally for one user: request logs, tests. */
  recent(query: { readonly limit: number; readonly userId?: string }): Promise<UsageRecord[]>;
  /** Rows matching every filter given, newest first: the request log (GET /admin/requests). */
  search(query: RequestQuery): Promise<UsageRecord[]>;
  /** Requests, tokens, failures and time to first token per bucket, and errors by code. */
  timeline(query: UsageTimelineQuery): Promise<UsageTimeline>;
  /** Per provider that answered in [from, to): requests, errors, mean latencies, the last error. */
  providerStats(range: { readonly from: number; readonly to: number }): Promise<ProviderUsageStats[]>;
  /** Total tokens of the rows for this key (or user) at or after `since`: seeds quota counters. */
  tokensSince(subject: { keyId: string } | { userId: string }, since: number): Promise<number>;
  /** Micro-units of `currency` the rows for this key (or user) cost at or after `since`: seeds budget counters. */
  costSince(subject: { keyId: string } | { userId: string }, currency: string, since: number): Promise<number>;
}

export interface ConversationStore {
  create(record: ConversationRecord): Promise<void>;
  get(id: string): Promise<ConversationRecord | undefined>;
  /** The user's conversations, most recently updated first. */
  list(userId: string, options?: { limit?: number }): Promise<ConversationRecord[]>;
  /** Deletes the conversation and its messages; false when there was none. */
  delete(id: string): Promise<boolean>;
  /** Appends after the last message (seq is assigned by the store) and bumps `updatedAt` to `at`. */
  append(id: string, messages: readonly Omit<ConversationMessage, 'seq'>[], at: number): Promise<void>;
  /** All messages in seq order, or only the last `lastCount`. */
  messages(id: string, options?: { lastCount?: number }): Promise<ConversationMessage[]>;
}

/** Where a response of the Responses API stands; the last four are final. */
export type ResponseStatus = 'queued' | 'in_progress' | 'completed' | 'incomplete' | 'failed' | 'cancelled';

/**
 * A response of the Responses API (POST /v1/responses), stored unless its request said `store:
 * false`. The JSON fields are returned as stored (parsed, not checked): the routes that wrote them
 * validate them when they read them back.
 */
export interface ResponseRecord {
  /** `resp_<generationId>`. */
  readonly id: string;
  /** The owner: only they (or an admin) may read, continue, cancel or delete it. */
  readonly userId: string;
  readonly generationId: string;
  /** The model name the client asked for. */
  readonly model: string;
  readonly status: ResponseStatus;
  readonly background: boolean;
  readonly createdAt: number;
  readonly completedAt?: number;
  readonly previousResponseId?: string;
  /** JSON: the request fields the response object repeats (instructions, tools, temperature, …). */
  readonly request: unknown;
  /** JSON: the input items, those of the previous responses first. */
  readonly input: unknown;
  /** JSON: the response object as GET answers it, as last stored. */
  readonly response: unknown;
  /** JSON: the generation's event log, kept once a background response finished, for replays. */
  readonly events?: unknown;
}

/** How a response ended, recorded once its generation finished. */
export interface ResponseOutcome {
  readonly status: ResponseStatus;
  readonly completedAt: number;
  readonly response: unknown;
  readonly events?: unknown;
}

export interface ResponseStore {
  create(record: ResponseRecord): Promise<void>;
  get(id: string): Promise<ResponseRecord | undefined>;
  /** Records how the response ended; false when there is no such response (deleted meanwhile). */
  finish(id: string, outcome: ResponseOutcome): Promise<boolean>;
  /** False when there was none. */
  delete(id: string): Promise<boolean>;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  readonly keys: KeyStore;
  readonly usage: UsageStore;
  readonly conversations: ConversationStore;
  readonly responses: ResponseStore;
  /** Prompt and answer text, kept only with `log: { requests: true }`. */
  readonly requestLog: RequestLogStore;
  /** True when the database answers (for /readyz). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
