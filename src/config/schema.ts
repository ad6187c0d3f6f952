// The shape of sluice.yaml, as zod schemas. Defaults live in defaults.ts; this file only says
// what is allowed, so that every problem can be reported at once with its path.
import { z } from 'zod';

const milliseconds = z.number().int().nonnegative();
const positiveInt = z.number().int().positive();

export const timeoutsSchema = z.strictObject({
  /** TCP + TLS connect to the provider. */
  connectMs: positiveInt.optional(),
  /** From sending the request until the first event of the answer. */
  firstByteMs: positiveInt.optional(),
  /** Longest gap between two events of the answer. */
  idleMs: positiveInt.optional(),
  /** The whole answer; 0 or absent means no limit. */
  totalMs: milliseconds.optional(),
});

const providerCommon = {
  /** Model names advertised in GET /v1/models for this provider. */
  models: z.array(z.string().min(1)).optional(),
  timeouts: timeoutsSchema.optional(),
};

export const openAiProviderSchema = z.strictObject({
  type: z.literal('openai'),
  baseUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://api.openai.com/v1' }),
  apiKey: z.string().min(1).optional(),
  /** Extra headers sent on every upstream request (for example an organisation id). */
  headers: z.record(z.string(), z.string()).optional(),
  /** Outbound HTTP proxy for this provider only, e.g. http://proxy.internal:3128. */
  proxy: z.url({ protocol: /^https?$/, error: 'must be an http(s) proxy URL such as http://proxy:3128' }).optional(),
  /** Largest single upstream SSE event accepted, in bytes. */
  maxEventBytes: positiveInt.optional(),
  /** Keep-alive connections per upstream origin. */
  maxConnections: positiveInt.optional(),
  ...providerCommon,
});

export const anthropicProviderSchema = z.strictObject({
  type: z.literal('anthropic'),
  /** Without the /v1 suffix. */
  baseUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://api.anthropic.com' }).optional(),
  apiKey: z.string().min(1),
  /** The `anthropic-version` header. */
  version: z.string().min(1).optional(),
  /** `max_tokens` when the request gives none (the Messages API requires it). */
  maxTokens: positiveInt.optional(),
  headers: z.record(z.string(), z.string()).optional(),
  proxy: z.url({ protocol: /^https?$/, error: 'must be an http(s) proxy URL such as http://proxy:3128' }).optional(),
  maxEventBytes: positiveInt.optional(),
  maxConnections: positiveInt.optional(),
  ...providerCommon,
});

export const sparkProviderSchema = z.strictObject({
  type: z.literal('spark'),
  /** wss://spark-api.xf-yun.com by default; the version path is added per model. */
  baseUrl: z.url({ protocol: /^wss?$/, error: 'must be a ws(s) URL such as wss://spark-api.xf-yun.com' }).optional(),
  appId: z.string().min(1),
  apiKey: z.string().min(1),
  apiSecret: z.string().min(1),
  /** Model name → WebSocket path and `domain`; merged over the known versions. */
  versions: z.record(z.string().min(1), z.strictObject({ path: z.string().startsWith('/'), domain: z.string().min(1) })).optional(),
  ...providerCommon,
});

export const qianfanProviderSchema = z.strictObject({
  type: z.literal('qianfan'),
  /** https://aip.baidubce.com by default; the token and chat paths are added to it. */
  baseUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://aip.baidubce.com' }).optional(),
  apiKey: z.string().min(1),
  secretKey: z.string().min(1),
  /** Model name → chat endpoint (`completions_pro`, `ernie-speed-128k`, …); merged over the known ones. */
  endpoints: z.record(z.string().min(1), z.string().min(1)).optional(),
  proxy: z.url({ protocol: /^https?$/, error: 'must be an http(s) proxy URL such as http://proxy:3128' }).optional(),
  maxEventBytes: positiveInt.optional(),
  maxConnections: positiveInt.optional(),
  ...providerCommon,
});

const fieldPath = z.string().regex(/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/, 'a dotted field path such as data.content or choices.0.delta.content');

export const signedHttpProviderSchema = z.strictObject({
  type: z.literal('signed-http'),
  /** The streaming endpoint, POSTed with the request body. */
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  auth: z.discriminatedUnion('scheme', [
    z.strictObject({ scheme: z.literal('none') }),
    z.strictObject({ scheme: z.literal('bearer'), key: z.string().min(1) }),
    z.strictObject({ scheme: z.literal('header'), name: z.string().min(1), key: z.string().min(1) }),
    z.strictObject({ scheme: z.literal('ak-sk-sha256'), ak: z.string().min(1), sk: z.string().min(1) }),
  ]),
  /** Add the caller's user id to the request body and to every JSON event, under this name. */
  userIdField: z.string().min(1).optional(),
  /** Where the answer's text is in each JSON event; a non-JSON event is text as a whole. */
  textPath: fieldPath.optional(),
  /** The event that ends the answer: `path` equal to `equals`; without it, the end of the stream. */
  endWhen: z.strictObject({ path: fieldPath, equals: z.union([z.string(), z.number(), z.boolean()]) }).optional(),
  /** Upstream response headers copied to the client's response (e.g. x-trace-id). */
  passHeaders: z.array(z.string().min(1)).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  proxy: z.url({ protocol: /^https?$/, error: 'must be an http(s) proxy URL such as http://proxy:3128' }).optional(),
  maxEventBytes: positiveInt.optional(),
  maxConnections: positiveInt.optional(),
  ...providerCommon,
});

export const mockProviderSchema = z.strictObject({
  type: z.literal('mock'),
  /** How many text deltas the demo answer is cut into. */
  chunkCount: positiveInt.optional(),
  /** Delay before each delta. */
  delayMs: milliseconds.optional(),
  ...providerCommon,
});

export const providerSchema = z.discriminatedUnion('type', [openAiProviderSchema, anthropicProviderSchema, sparkProviderSchema, qianfanProviderSchema, signedHttpProviderSchema, mockProviderSchema], {
  error: (issue) =>
    issue.code === 'invalid_union' ? 'type must be one of: openai, anthropic, spark, qianfan, signed-http, mock' : undefined,
});

export const modelRouteSchema = z.strictObject({
  provider: z.string().min(1),
  /** The provider's own name for the model; defaults to the alias. */
  model: z.string().min(1).optional(),
  /** Tried in order, only before anything has reached the client: aliases or `provider/model`. */
  fallbacks: z.array(z.string().min(1)).optional(),
});

const limitsSchema = z.strictObject({
  requestsPerMinute: positiveInt.optional(),
  tokensPerMinute: positiveInt.optional(),
  concurrentStreams: positiveInt.optional(),
  /** Tokens (prompt + completion) per UTC day. */
  dailyTokens: positiveInt.optional(),
  /** Tokens (prompt + completion) per UTC month. */
  monthlyTokens: positiveInt.optional(),
});

const userIdPattern = /^[A-Za-z0-9._@:-]{1,128}$/;

export const authSchema = z.strictObject({
  /** keys: Sluice API keys; jwt: bearer JWTs; both; none: no credential (loopback only). */
  mode: z.enum(['keys', 'jwt', 'both', 'none']).optional(),
  jwt: z
    .strictObject({
      /** HS256 shared secret; at least 32 characters. */
      secret: z.string().min(32, 'an HS256 secret needs at least 32 characters (256 bits)').optional(),
      /** RS256/ES256 keys from a JWKS URL, cached and refetched on an unknown kid. */
      jwksUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://login.example.com/.well-known/jwks.json' }).optional(),
      issuer: z.string().min(1).optional(),
      audience: z.string().min(1).optional(),
      /** The claim holding the user id. */
      userClaim: z.string().min(1).optional(),
      /** The claim holding the role (user, service or admin); absent in a token means defaultRole. */
      roleClaim: z.string().min(1).optional(),
      defaultRole: z.enum(['user', 'service', 'admin']).optional(),
      clockToleranceSeconds: z.number().int().nonnegative().optional(),
    })
    .optional(),
  /** How long a ticket from POST /api/tickets stays valid. */
  ticketTtlMs: positiveInt.optional(),
});

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      host: z.string().min(1).optional(),
      port: z.number().int().min(0).max(65535).optional(),
      /** Largest accepted request body. */
      bodyLimitBytes: positiveInt.optional(),
      /** Interval between `: ping` comment lines on idle streams. */
      heartbeatMs: positiveInt.optional(),
      /** Bytes a slow client may leave unread before its stream is ended with `client_too_slow`. */
      maxBufferedBytes: positiveInt.optional(),
      /** How long SIGTERM waits for running streams before ending them. */
      drainTimeoutMs: milliseconds.optional(),
    })
    .optional(),
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional() }).optional(),
  /** Defaults for every provider's timeouts. */
  timeouts: timeoutsSchema.optional(),
  providers: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'provider ids use a-z, 0-9, - and _'), providerSchema).optional(),
  models: z.record(z.string().min(1), modelRouteSchema).optional(),
  /** The model used when a request names none (native API); an alias or `provider/model`. */
  defaultModel: z.string().min(1).optional(),
  auth: authSchema.optional(),
  cluster: z
    .strictObject({
      /** Redis shared by every node: redis://host:6379 (rediss:// for TLS). Setting it turns cluster mode on. */
      redisUrl: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379' }).optional(),
      /** This node's id in connection lists and logs; default hostname:pid. */
      nodeId: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'node ids use A-Z, a-z, 0-9 and . _ : -').optional(),
      /** A node silent for this long counts as gone (ms): its connections leave the lists and followers of its generations get generation_interrupted. */
      presenceTtlMs: z.number().int().min(1000).optional(),
      /** Prefix of every Redis key, so deployments can share one Redis. */
      keyPrefix: z.string().regex(/^[A-Za-z0-9._:-]{1,32}$/, 'use A-Z, a-z, 0-9 and . _ : -').optional(),
    })
    .optional(),
  websocket: z
    .strictObject({
      /** Protocol pings on every socket at this interval; a socket that misses one is dropped. 0 turns them off. */
      pingIntervalMs: milliseconds.optional(),
      /** Whether closing a socket cancels its chats at once, instead of leaving them resumable. */
      cancelChatsOnClose: z.boolean().optional(),
    })
    .optional(),
  generations: z
    .strictObject({
      /** How long a resumable generation keeps running after its last client left, waiting for a re-attach. */
      resumeGraceMs: milliseconds.optional(),
      /** How long a finished generation stays attachable (a reconnect then gets the rest, or 204). */
      retentionMs: positiveInt.optional(),
    })
    .optional(),
  conversations: z
    .strictObject({
      /** At most this many stored messages are sent with a new one. */
      historyMessages: z.number().int().nonnegative().optional(),
      /** … and at most this many characters of them (the oldest are dropped first). */
      historyChars: z.number().int().nonnegative().optional(),
    })
    .optional(),
  store: z
    .strictObject({
      /** sqlite:<path>, sqlite::memory: or postgres://user@host:5432/db. */
      url: z.string().regex(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/, 'use sqlite:./data/sluice.db, sqlite::memory: or postgres://user@host:5432/database').optional(),
    })
    .optional(),
  limits: z
    .strictObject({
      /** Limits for every user (JWT and key callers alike) unless `users` names them. */
      perUser: limitsSchema.optional(),
      /** Per-user overrides, by user id. */
      users: z.record(z.string().regex(userIdPattern, 'user ids use A-Z, a-z, 0-9 and . _ @ : -'), limitsSchema).optional(),
    })
    .optional(),
  hub: z
    .strictObject({
      /** GET /api/events streams are ended (cleanly, with a reconnect hint) after about this long; 0 means never. */
      maxConnectionAgeMs: milliseconds.optional(),
      /** At most this many of the newest pushes per user are kept for Last-Event-ID replay; 0 keeps none. */
      retentionCount: z.number().int().nonnegative().optional(),
      /** Pushes older than this are no longer replayed; 0 keeps none. */
      retentionMs: milliseconds.optional(),
    })
    .optional(),
});

export type RawConfig = z.infer<typeof configSchema>;
export type OpenAiProviderConfig = z.infer<typeof openAiProviderSchema>;
export type MockProviderConfig = z.infer<typeof mockProviderSchema>;
export type AnthropicProviderConfig = z.infer<typeof anthropicProviderSchema>;
export type SparkProviderConfig = z.infer<typeof sparkProviderSchema>;
export type QianfanProviderConfig = z.infer<typeof qianfanProviderSchema>;
export type SignedHttpProviderConfig = z.infer<typeof signedHttpProviderSchema>;
export type ProviderConfig = z.infer<typeof providerSchema>;
export type ModelRouteConfig = z.infer<typeof modelRouteSchema>;
export type LimitsConfig = z.infer<typeof limitsSchema>;
