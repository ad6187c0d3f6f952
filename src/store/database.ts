// The tables as kysely sees them: one row type per table, shared by the SQLite and PostgreSQL
// dialects. Times are integer milliseconds since the epoch in both (bigint in PostgreSQL, read
// back as numbers by the pool's type parser in create-store.ts). Booleans are 0/1 integers in both
// so one query works unchanged: better-sqlite3 cannot bind a JavaScript boolean.
import type { Generated } from 'kysely';

/** One API key; `limits` is the JSON text of a `Limits` object. */
export interface ApiKeysTable {
  id: string;
  user_id: string;
  role: string;
  name: string | null;
  secret_hash: string;
  limits: string;
  /** JSON list of model patterns the key may use; null: every model. */
  models: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  /** Budgets in whole micro-units of the requested model's currency; null: none. */
  daily_budget_micros: number | null;
  monthly_budget_micros: number | null;
}

/** One row per generation (or refused request). */
export interface UsageTable {
  id: Generated<number>;
  at: number;
  user_id: string;
  key_id: string | null;
  generation_id: string | null;
  provider: string;
  model: string;
  upstream_model: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** 1 when the token counts were estimated, else 0. */
  estimated: number;
  time_to_first_token_ms: number | null;
  duration_ms: number;
  outcome: string;
  error_code: string | null;
  /** The API surface: chat-completions, native, responses, messages, embeddings, websocket. */
  route: string | null;
  /** The pool deployment that served (`provider/model`). */
  deployment: string | null;
  /** The provider key that served (`provider#n`), never the key itself. */
  provider_key_id: string | null;
  /** Upstream attempts made, the serving one included. */
  attempts: number | null;
  /** What the row cost, in whole micro-units of `currency`; null: the model has no price. */
  cost_micros: number | null;
  /** ISO 4217 code of `cost_micros`. */
  currency: string | null;
}

export interface ConversationsTable {
  id: string;
  user_id: string;
  title: string | null;
  created_at: number;
  updated_at: number;
}

export interface ConversationMessagesTable {
  conversation_id: string;
  seq: number;
  role: string;
  content: string;
  status: string;
  created_at: number;
  generation_id: string | null;
}

/** One response of the Responses API; the last four columns are JSON text. */
export interface ResponsesTable {
  id: string;
  user_id: string;
  generation_id: string;
  model: string;
  status: string;
  /** 1 for a background response, else 0. */
  background: number;
  created_at: number;
  completed_at: number | null;
  previous_response_id: string | null;
  request: string;
  input: string;
  response: string;
  /** The generation's event log, stored when a background response finishes. */
  events: string | null;
}

/** Prompt and answer text of one generation (only with `log: { requests: true }`). */
export interface RequestLogTable {
  generation_id: string;
  at: number;
  user_id: string;
  /** JSON: the messages sent upstream. */
  prompt: string;
  answer: string;
}

/** The whole schema, for `Kysely<Database>`. */
export interface Database {
  api_keys: ApiKeysTable;
  usage: UsageTable;
  conversations: ConversationsTable;
  conversation_messages: ConversationMessagesTable;
  responses: ResponsesTable;
  request_log: RequestLogTable;
}
