// The one defaults object. Every setting that has a default has it here, and nowhere else.
import type { Config, JwtSettings, LogLevel } from './config.js';
import type { Timeouts } from '../contract/provider.js';

interface Defaults {
  server: Config['server'];
  log: { level: LogLevel };
  timeouts: Timeouts;
  openai: { maxEventBytes: number; maxConnections: number };
  anthropic: { baseUrl: string; version: string; maxTokens: number; maxEventBytes: number; maxConnections: number };
  spark: { baseUrl: string };
  qianfan: { baseUrl: string; maxEventBytes: number; maxConnections: number };
  signedHttp: { userIdField: string; maxEventBytes: number; maxConnections: number };
  mock: { chunkCount: number; delayMs: number };
  auth: { mode: Config['auth']['mode']; ticketTtlMs: number; jwt: Omit<JwtSettings, 'secret' | 'jwksUrl' | 'issuer' | 'audience'> };
  store: { url: string };
  hub: Config['hub'];
  generations: Config['generations'];
  websocket: Config['websocket'];
  conversations: Config['conversations'];
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
  log: { level: 'info' },
  timeouts: {
    connectMs: 10_000,
    firstByteMs: 60_000,
    idleMs: 60_000,
    totalMs: 0,
  },
  openai: {
    maxEventBytes: 16 * 1024 * 1024,
    maxConnections: 256,
  },
  anthropic: {
    baseUrl: 'https://api.anthropic.com',
    version: '2023-06-01',
    maxTokens: 4096,
    maxEventBytes: 16 * 1024 * 1024,
    maxConnections: 256,
  },
  spark: {
    baseUrl: 'wss://spark-api.xf-yun.com',
  },
  signedHttp: {
    userIdField: 'userId',
    maxEventBytes: 16 * 1024 * 1024,
    maxConnections: 256,
  },
  qianfan: {
    baseUrl: 'https://aip.baidubce.com',
    maxEventBytes: 16 * 1024 * 1024,
    maxConnections: 256,
  },
  mock: {
    chunkCount: 24,
    delayMs: 20,
  },
  auth: {
    mode: 'keys',
    ticketTtlMs: 60_000,
    jwt: { userClaim: 'sub', roleClaim: 'role', defaultRole: 'user', clockToleranceSeconds: 5 },
  },
  store: { url: 'sqlite:./data/sluice.db' },
  hub: { maxConnectionAgeMs: 60 * 60_000, retentionCount: 100, retentionMs: 5 * 60_000 },
  websocket: { pingIntervalMs: 30_000, cancelChatsOnClose: false },
  generations: { resumeGraceMs: 30_000, retentionMs: 300_000 },
  conversations: { historyMessages: 20, historyChars: 32_000 },
});

/** The configuration used when Sluice starts with no config file: the built-in demo model. */
export const zeroConfig = {
  providers: { mock: { type: 'mock' } },
  models: { 'sluice-demo': { provider: 'mock', model: 'sluice-demo' } },
  defaultModel: 'sluice-demo',
} as const;
