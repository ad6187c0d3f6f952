// The resolved, frozen configuration the rest of the program reads. Only load.ts creates one.
import type { Price } from '../contract/cost.js';
import type { Limits, Role } from '../contract/principal.js';
import type { OutboundProxy } from '../contract/provider.js';
import type { LogLevel } from '../observability/logger.js';
import type { TracingSettings } from '../observability/tracing.js';
import type { ResolvedProvider } from '../providers/definitions.js';

export type { LogLevel, ResolvedProvider, TracingSettings };

export interface ModelRoute {
  readonly provider: string;
  readonly model: string;
  readonly fallbacks: readonly string[];
  /** Absent: the alias has no price of its own (see `prices`, and servedPrice in price.ts). */
  readonly price?: Price;
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
  /** Present when cluster.redisUrl (or SLUICE_REDIS_URL) is set. */
  readonly cluster?: { readonly redisUrl: string; readonly nodeId: string; readonly keyPrefix: string; readonly presenceTtlMs: number };
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
