// The one defaults object. Every setting that has a default has it here, and nowhere else; a
// provider's own defaults are written in its definition (src/providers/<type>/config.ts) and
// gathered here from the provider list.
import type { Config, JwtSettings, LogLevel, TracingSettings } from './config.js';
import type { Timeouts } from '../contract/provider.js';
import { providerDefinitions, type ProviderType } from '../providers/definitions.js';

interface Defaults {
  server: Config['server'];
  log: { level: LogLevel; requests: boolean };
  timeouts: Timeouts;
  /** By provider type: what `resolve` fills in for settings an entry leaves out. */
  providers: Readonly<Record<ProviderType, Readonly<Record<string, unknown>>>>;
  auth: { mode: Config['auth']['mode']; ticketTtlMs: number; jwt: Omit<JwtSettings, 'secret' | 'jwksUrl' | 'issuer' | 'audience'> };
  store: { url: string };
  hub: Config['hub'];
  generations: Config['generations'];
  websocket: Config['websocket'];
  conversations: Config['conversations'];
  metrics: Config['metrics'];
  tracing: Omit<TracingSettings, 'otlpEndpoint' | 'headers'>;
  router: Config['router'];
  deployment: { weight: number; priority: number };
}
export const defaults: Readonly<Defaults> = Object.freeze<Defaults>({
  server: {
    host: '127.0.0.1',
    port: 8080,
    bodyLimitBytes: 1024 * 1024,
    heartbeatMs: 15_000,
    maxBufferedBytes: 1024 * 1024,
    drainTimeoutMs: 10_000,
  },
  log: { level: 'info', requests: false },
  timeouts: {
    connectMs: 10_000,
    firstByteMs: 60_000,
    idleMs: 60_000,
    totalMs: 0,
  },
  providers: Object.fromEntries(providerDefinitions.map((definition) => [definition.type, definition.defaults])) as Record<ProviderType, Readonly<Record<string, unknown>>>,
  auth: {
    mode: 'keys',
    ticketTtlMs: 60_000,
    jwt: { userClaim: 'sub', roleClaim: 'role', modelsClaim: 'models', defaultRole: 'user', clockToleranceSeconds: 5 },
  },
  store: { url: 'sqlite:./data/sluice.db' },
  hub: { maxConnectionAgeMs: 60 * 60_000, retentionCount: 100, retentionMs: 5 * 60_000 },
  websocket: { pingIntervalMs: 30_000, cancelChatsOnClose: false },
  generations: { resumeGraceMs: 30_000, retentionMs: 300_000 },
  conversations: { historyMessages: 20, historyChars: 32_000 },
  // Public on the main port, as before the setting existed; docs/deployment.md advises listen or admin.
  metrics: { auth: 'none' },
  tracing: { sampleRatio: 1, serviceName: 'sluice', exportDelayMs: 5000 },
  router: {
    retry: { maxAttempts: 3, maxTotalMs: 30_000 },
    // 5 s doubling to 5 minutes; a half-open probe holds the others off for 30 s.
    cooldown: { initialMs: 5000, maxMs: 300_000, probeTimeoutMs: 30_000 },
    queueTimeoutMs: 10_000,
  },
  deployment: { weight: 1, priority: 0 },
});

/** The configuration used when Sluice starts with no config file: the built-in demo model. */
export const zeroConfig = {
  providers: { mock: { type: 'mock' } },
  models: { 'sluice-demo': { provider: 'mock', model: 'sluice-demo' } },
  defaultModel: 'sluice-demo',
} as const;
