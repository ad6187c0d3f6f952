// The resolved, frozen configuration the rest of the program reads. Only load.ts creates one.
import type { Price } from '../contract/cost.js';
import type { Limits, Role } from '../contract/principal.js';
import type { OutboundProxy } from '../contract/provider.js';
import type { LogLevel } from '../observability/logger.js';
import type { TracingSettings } from '../observability/tracing.js';
import type { ResolvedProvider } from '../providers/definitions.js';

export type { LogLevel, ResolvedProvider, TracingSettings };

/** One upstream of a pool (docs/pools.md). */
export interface Deployment {
  /** `provider/model`: the deployment's name in logs, usage rows, metrics and the admin view. */
  readonly id: string;
  readonly provider: string;
  readonly model: string;
  /** Share under `weighted`; default 1. */
  readonly weight: number;
  /** 0 first; default 0. */
  readonly priority: number;
  /** This deployment's own price, winning over the alias's (docs/spend.md). */
  readonly price?: Price;
}

export type PoolStrategy = 'weighted' | 'least-busy' | 'ordered';

export interface ModelRoute {
  /** The first deployment's provider (what a pool of one names). */
  readonly provider: string;
  /** The first deployment's model. */
  readonly model: string;
  readonly strategy: PoolStrategy;
  /** At least one. */
  readonly deployments: readonly Deployment[];
  readonly fallbacks: readonly string[];
  /** Absent: the alias has no price of its own (see `prices`, and servedPrice in price.ts). */
  readonly price?: Price;
}

/** `router:` — how pools choose, retry, cool down and queue. */
export interface RouterSettings {
  readonly retry: { readonly maxAttempts: number; readonly maxTotalMs: number };
  readonly cooldown: { readonly initialMs: number; readonly maxMs: number; readonly probeTimeoutMs: number };
  readonly queueTimeoutMs: number;
}

export type AuthMode = 'keys' | 'jwt' | 'both' | 'none';

export interface JwtSettings {
  readonly secret?: string;
  readonly jwksUrl?: string;
  readonly issuer?: string;
  readonly audience?: string;
  readonly userClaim: string;
  readonly roleClaim: string;
  /** The claim holding the model patterns a token may use (an array, or a space-separated string). */
  readonly modelsClaim: string;
  readonly defaultRole: Role;
  readonly clockToleranceSeconds: number;
}

export interface Config {
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly bodyLimitBytes: number;
    readonly heartbeatMs: number;
    readonly maxBufferedBytes: number;
    readonly drainTimeoutMs: number;
  };
  /** `requests`: keep prompt and answer text in the request log (docs/console.md). */
  readonly log: { readonly level: LogLevel; readonly requests: boolean };
  readonly providers: Readonly<Record<string, ResolvedProvider>>;
  readonly models: Readonly<Record<string, ModelRoute>>;
  /** Prices by `provider/model`, for names no alias's price covers. */
  readonly prices: Readonly<Record<string, Price>>;
  readonly defaultModel: string;
  readonly router: RouterSettings;
  readonly outboundProxy: OutboundProxy;
  readonly auth: {
    readonly mode: AuthMode;
    /** Present when mode is jwt or both. */
    readonly jwt?: JwtSettings;
    readonly ticketTtlMs: number;
    /** SLUICE_ADMIN_KEY: the admin key to install on first start instead of a generated one. */
    readonly adminKey?: string;
  };
  readonly store: { readonly url: string };
  /** Present when cluster.redisUrl (or SLUICE_REDIS_URL) or cluster.redisClusterNodes (or SLUICE_REDIS_CLUSTER_NODES) is set. */
  readonly cluster?: {
    /** `{ url }` for one Redis, `{ clusterNodes }` for a Redis Cluster's seed nodes. */
    readonly redis: { readonly url: string } | { readonly clusterNodes: readonly string[] };
    readonly nodeId: string;
    readonly keyPrefix: string;
    readonly presenceTtlMs: number;
    /** Gathering time before a generation's new events are copied to Redis (ms); 0 copies each read's. */
    readonly logFlushMs: number;
    /** How long a pool of one goes on this node's last healthy read of the upstream health (ms); 0 reads every time. */
    readonly recentHealthMs: number;
  };
  readonly websocket: { readonly pingIntervalMs: number; readonly cancelChatsOnClose: boolean };
  readonly generations: { readonly resumeGraceMs: number; readonly retentionMs: number };
  readonly conversations: { readonly historyMessages: number; readonly historyChars: number };
  readonly limits: { readonly perUser: Limits; readonly users: Readonly<Record<string, Limits>> };
  /** GET /metrics: on the main port (public, or admin only), or on a listener of its own. */
  readonly metrics: {
    /** Who may read /metrics, wherever it is served. */
    readonly auth: 'none' | 'admin';
    /** Present when metrics.listen is set: /metrics is served there, and the main port answers 404. */
    readonly listen?: { readonly host: string; readonly port: number };
  };
  /** Present when tracing.otlpEndpoint is set (docs/tracing.md). */
  readonly tracing?: TracingSettings;
  /** The per-user connection hub (GET /api/events, POST /api/push). */
  readonly hub: {
    /** A hub stream is ended after about this long (ms), so clients reconnect and rebalance; 0 means never. */
    readonly maxConnectionAgeMs: number;
    /** Newest pushes kept per user for replay. */
    readonly retentionCount: number;
    /** How long (ms) a push stays replayable. */
    readonly retentionMs: number;
  };
}
