// The shape of sluice.yaml, as zod schemas. Defaults live in defaults.ts; this file only says
// what is allowed, so that every problem can be reported at once with its path. Each provider's
// schema lives in its own folder (src/providers/<type>/config.ts), named in providers/definitions.ts.
import { z } from 'zod';
import { providerDefinitions } from '../providers/definitions.js';
import { timeoutsSchema } from '../providers/shared/config.js';
import { budgetSchema, priceSchema, pricesSchema } from './price.js';

const milliseconds = z.number().int().nonnegative();
const positiveInt = z.number().int().positive();

const [firstProvider, ...otherProviders] = providerDefinitions;

/** One entry under `providers:`, by its `type`: the union of every listed provider's schema. */
export const providerSchema = z.discriminatedUnion('type', [firstProvider.schema, ...otherProviders.map((definition) => definition.schema)], {
  error: (issue) => (issue.code === 'invalid_union' ? `type must be one of: ${providerDefinitions.map((definition) => definition.type).join(', ')}` : undefined),
});

/** One upstream of a pool: a provider entry and the provider's own model name. */
export const deploymentSchema = z.strictObject({
  provider: z.string().min(1),
  model: z.string().min(1),
  /** The share of requests under `weighted` (relative to the others of the same priority). */
  weight: z.number().positive().optional(),
  /** 0 first; a higher one is used only while every lower one is unavailable. */
  priority: z.number().int().nonnegative().optional(),
  /** This deployment's price per million tokens, when it differs from the alias's (docs/spend.md). */
  price: priceSchema.optional(),
});

export const modelRouteSchema = z
  .strictObject({
    /** A pool of one: the provider entry that serves this alias (or use `deployments`). */
    provider: z.string().min(1).optional(),
    /** The provider's own name for the model; defaults to the alias. */
    model: z.string().min(1).optional(),
    /** Several upstreams for this alias, balanced by `strategy` (docs/pools.md). */
    deployments: z.array(deploymentSchema).min(1, 'list at least one deployment').optional(),
    /** How a deployment is chosen among the available ones of the lowest priority. */
    strategy: z.enum(['weighted', 'least-busy', 'ordered']).optional(),
    /** Tried in order after the whole pool, only before anything has reached the client: aliases or `provider/model`. */
    fallbacks: z.array(z.string().min(1)).optional(),
    /** Per million tokens, in `currency` (default USD): docs/spend.md. A deployment's own price wins. */
    price: priceSchema.optional(),
  })
  .superRefine((route, context) => {
    if ((route.provider === undefined) === (route.deployments === undefined)) {
      context.addIssue({ code: 'custom', path: ['provider'], message: 'set either provider (with model) or deployments: [{provider, model}]' });
    }
    if (route.deployments !== undefined && route.model !== undefined) {
      context.addIssue({ code: 'custom', path: ['model'], message: 'with deployments, each deployment names its model; remove model here' });
    }
  });

const routerSchema = z.strictObject({
  retry: z
    .strictObject({
      /** Upstream attempts per pool for one request, the first included, before the first byte. */
      maxAttempts: positiveInt.optional(),
      /** No new attempt starts this long after the request started. */
      maxTotalMs: positiveInt.optional(),
    })
    .optional(),
  cooldown: z
    .strictObject({
      /** The first cooldown after a failure without Retry-After; doubles with each further failure. */
      initialMs: positiveInt.optional(),
      /** The longest cooldown, Retry-After included. */
      maxMs: positiveInt.optional(),
      /** How long a half-open trial request keeps others off the target before another may try. */
      probeTimeoutMs: positiveInt.optional(),
    })
    .optional(),
  /** How long a request may wait for a provider's budget (providers.<id>.limits) when no deployment has room. */
  queueTimeoutMs: milliseconds.optional(),
});

const limitsSchema = z.strictObject({
  requestsPerMinute: positiveInt.optional(),
  tokensPerMinute: positiveInt.optional(),
  concurrentStreams: positiveInt.optional(),
  /** Tokens (prompt + completion) per UTC day. */
  dailyTokens: positiveInt.optional(),
  /** Tokens (prompt + completion) per UTC month. */
  monthlyTokens: positiveInt.optional(),
  /** Money per UTC day, in the currency of the requested model's price (docs/spend.md). */
  dailyBudget: budgetSchema.optional(),
  /** Money per UTC month, likewise. */
  monthlyBudget: budgetSchema.optional(),
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
      /** The claim holding the model patterns a token may use; absent in a token means every model. */
      modelsClaim: z.string().min(1).optional(),
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
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
      /** Store each request's prompt and answer text in the request log (docs/console.md); off by default. */
      requests: z.boolean().optional(),
    })
    .optional(),
  /** Defaults for every provider's timeouts. */
  timeouts: timeoutsSchema.optional(),
  providers: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'provider ids use a-z, 0-9, - and _'), providerSchema).optional(),
  models: z.record(z.string().min(1), modelRouteSchema).optional(),
  /** Prices of `provider/model` names that no alias's `price` covers, per million tokens. */
  prices: pricesSchema.optional(),
  /** How pools choose, retry, cool down and queue (docs/pools.md). */
  router: routerSchema.optional(),
  /** The model used when a request names none (native API); an alias or `provider/model`. */
  defaultModel: z.string().min(1).optional(),
  auth: authSchema.optional(),
  cluster: z
    .strictObject({
      /** Redis shared by every node: redis://host:6379 (rediss:// for TLS). Setting it turns cluster mode on. */
      redisUrl: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379' }).optional(),
      /** Seed nodes of a Redis Cluster instead of redisUrl (the rest are discovered): [redis://host:7000, …]. Setting it turns cluster mode on. */
      redisClusterNodes: z
        .array(z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL such as redis://10.0.0.1:6379' }))
        .min(1, 'list at least one node of the Redis Cluster, such as [redis://10.0.0.1:6379]')
        .optional(),
      /** This node's id in connection lists and logs; default hostname:pid. */
      nodeId: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'node ids use A-Z, a-z, 0-9 and . _ : -').optional(),
      /** A node silent for this long counts as gone (ms): its connections leave the lists and followers of its generations get generation_interrupted. */
      presenceTtlMs: z.number().int().min(1000).optional(),
      /**
       * How long a node gathers a generation's new events before copying them to Redis (ms): one
       * write per this interval instead of one per upstream read. A follower on another node, and
       * what survives a crash of this node, lag by at most this much. 0 copies each read's events.
       */
      logFlushMs: z.number().int().min(0).max(1000).optional(),
      /**
       * How long a pool of one (a model with one deployment) goes on this node's last read of the
       * cluster's upstream health, while it found every target healthy (ms): its requests then
       * call the upstream without a Redis round trip first. A key another node disables reaches
       * this node that much later. 0 reads on every request.
       */
      recentHealthMs: z.number().int().min(0).max(10_000).optional(),
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
  /** OpenTelemetry traces sent over OTLP/HTTP; absent, nothing is traced and no tracing code is loaded. */
  tracing: z
    .strictObject({
      /** The OTLP/HTTP traces URL, such as http://127.0.0.1:4318/v1/traces. */
      otlpEndpoint: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL such as http://127.0.0.1:4318/v1/traces' }),
      /** Share of traces started here that are recorded (0 to 1); a caller's sampled `traceparent` is followed. */
      sampleRatio: z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1').optional(),
      /** `service.name` of the spans. */
      serviceName: z.string().min(1).optional(),
      /** Extra headers on every export (an API key of the collector). */
      headers: z.record(z.string().min(1), z.string()).optional(),
      /** Spans are sent in batches at most this long after they end. */
      exportDelayMs: positiveInt.optional(),
    })
    .optional(),
  /** Where GET /metrics is served, and to whom; by default publicly on the main port. */
  metrics: z
    .strictObject({
      /** host:port of a listener of its own for /metrics (e.g. 127.0.0.1:9464); the main port then answers 404 there. */
      listen: z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'use host:port, such as 127.0.0.1:9464 or [::1]:9464').optional(),
      /** none: anyone who reaches it; admin: an admin credential (Authorization: Bearer). */
      auth: z.enum(['none', 'admin']).optional(),
    })
    .optional(),
});

export type RawConfig = z.infer<typeof configSchema>;
export type ModelRouteConfig = z.infer<typeof modelRouteSchema>;
export type LimitsConfig = z.infer<typeof limitsSchema>;
