// The only reader of configuration files and process.env. It reports every problem at once, each
// with its path and how to fix it, and returns a frozen, typed Config.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { LineCounter, parseDocument } from 'yaml';
import { configSchema, type ModelRouteConfig, type RawConfig } from './schema.js';
import { defaults, zeroConfig } from './defaults.js';
import type { ConfigIssue } from './config-issue.js';
import { describeSchemaIssues, plural } from './issue-messages.js';
import { crossCheckIssues } from './cross-checks.js';
import type { Config, LogLevel, ModelRoute, ResolvedProvider } from './config.js';
import type { Timeouts } from '../contract/provider.js';
import { resolveProvider, type ProviderConfig } from '../providers/definitions.js';
import type { Limits } from '../contract/principal.js';
import type { Price } from '../contract/cost.js';
import { budgetMicros, resolvePrice } from './price.js';
import type { LimitsConfig } from './schema.js';

export type { ConfigIssue };

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(source: string, issues: readonly ConfigIssue[]) {
    super(`${source}: ${plural(issues.length, 'problem')}\n${formatIssues(issues)}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues.map((issue) => `  - ${issue.path || '(top level)'}: ${issue.message}`).join('\n');
}

type Env = Readonly<Record<string, string | undefined>>;

export interface LoadOptions {
  /** A YAML file; without one, the zero-config demo gateway. */
  path?: string | undefined;
  env?: Env;
}

/** Reads, interpolates, validates and freezes the configuration. Throws ConfigError. */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  if (options.path === undefined) return resolveConfig(zeroConfig, env, 'built-in defaults');
  let text: string;
  try {
    text = readFileSync(options.path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : String(error);
    throw new ConfigError(options.path, [{ path: '', message: `cannot read the config file (${reason}); pass an existing file to --config` }]);
  }
  return parseConfigText(text, env, options.path);
}

export function parseConfigText(text: string, env: Env, source = 'config'): Config {
  // Without prettyErrors the messages stay one clean line, and errors carry no linePos: the
  // LineCounter turns each error's offset into a line and column instead.
  const lines = new LineCounter();
  const document = parseDocument(text, { prettyErrors: false, lineCounter: lines });
  if (document.errors.length > 0) {
    throw new ConfigError(
      source,
      document.errors.map((error) => {
        const { line, col } = lines.linePos(error.pos[0]);
        return { path: `line ${line.toString()}, column ${col.toString()}`, message: `${error.message.split('\n')[0] ?? 'invalid YAML'}; fix the YAML syntax` };
      }),
    );
  }
  return resolveConfig(document.toJS() ?? {}, env, source);
}

/** Validates an already-parsed document. Pure apart from reading `env`. */
export function resolveConfig(input: unknown, env: Env, source = 'config'): Config {
  const issues: ConfigIssue[] = [];
  const interpolated = interpolate(input, env, [], issues);
  const parsed = configSchema.safeParse(interpolated, { reportInput: true });
  // A missing variable was already reported at its path; the empty string it left is not news.
  const reported = new Set(issues.map((issue) => issue.path));
  const notReported = (issue: ConfigIssue): boolean => !reported.has(issue.path);
  if (!parsed.success) issues.push(...describeSchemaIssues(parsed.error.issues, configSchema, interpolated).filter(notReported));
  // References between settings are checked on the unvalidated document in the same pass, so a
  // route to a missing provider is reported with the schema's problems instead of on the next run.
  issues.push(...crossCheckIssues(interpolated).filter(notReported));
  if (issues.length > 0 || !parsed.success) throw new ConfigError(source, issues);

  const config = applyDefaults(parsed.data, env, issues);
  if (issues.length > 0) throw new ConfigError(source, issues);
  return deepFreeze(config);
}

const envReference = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces `${NAME}` and `${NAME:-default}` in every string; a missing variable is an issue. */
function interpolate(value: unknown, env: Env, path: readonly (string | number)[], issues: ConfigIssue[]): unknown {
  if (typeof value === 'string') {
    return value.replace(envReference, (_match, name: string, fallback: string | undefined) => {
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      issues.push({ path: path.join('.'), message: `environment variable ${name} is not set; export it or write \${${name}:-default}` });
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((item, index) => interpolate(item, env, [...path, index], issues));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, interpolate(item, env, [...path, key], issues)]));
  }
  return value;
}

function applyDefaults(raw: RawConfig, env: Env, issues: ConfigIssue[]): Config {
  const baseTimeouts: Timeouts = withDefaults(defaults.timeouts, raw.timeouts);
  const rawProviders: Readonly<Record<string, ProviderConfig>> = raw.providers ?? zeroConfig.providers;
  const providers: Record<string, ResolvedProvider> = {};
  for (const [id, provider] of Object.entries(rawProviders)) {
    providers[id] = resolveProvider(provider, { id, timeouts: withDefaults(baseTimeouts, provider.timeouts) });
  }

  const models: Record<string, ModelRoute> = {};
  // A file that configures no providers gets the whole demo gateway, its model alias included.
  const rawModels: Readonly<Record<string, ModelRouteConfig>> = raw.models ?? (raw.providers === undefined ? zeroConfig.models : {});
  for (const [alias, route] of Object.entries(rawModels)) {
    // The schema let through exactly one of provider and deployments.
    const rawDeployments = route.deployments ?? [{ provider: route.provider ?? '', model: route.model ?? alias }];
    const deployments = rawDeployments.map((deployment) => ({
      id: `${deployment.provider}/${deployment.model}`,
      provider: deployment.provider,
      model: deployment.model,
      weight: deployment.weight ?? defaults.deployment.weight,
      priority: deployment.priority ?? defaults.deployment.priority,
      ...(deployment.price !== undefined ? { price: resolvePrice(deployment.price) } : {}),
    }));
    const first = deployments[0];
    if (first === undefined) continue;
    const duplicate = deployments.find((deployment, index) => deployments.findIndex((other) => other.id === deployment.id) !== index);
    if (duplicate) issues.push({ path: `models.${alias}.deployments`, message: `${duplicate.id} is listed twice; list each provider/model once and use weight for its share` });
    models[alias] = { provider: first.provider, model: first.model, strategy: route.strategy ?? 'weighted', deployments, fallbacks: route.fallbacks ?? [], ...(route.price !== undefined ? { price: resolvePrice(route.price) } : {}) };
  }
  const prices: Record<string, Price> = Object.fromEntries(Object.entries(raw.prices ?? {}).map(([name, price]) => [name, resolvePrice(price)]));
  // Whether the routes, fallbacks and defaultModel name something was checked with the schema (cross-checks.ts).
  const defaultModel = raw.defaultModel ?? Object.keys(models)[0] ?? firstProviderModel(providers);

  const server: { -readonly [K in keyof Config['server']]: Config['server'][K] } = withDefaults(defaults.server, raw.server);
  const host = env['SLUICE_HOST'];
  if (host) server.host = host;
  const port = env['SLUICE_PORT'] ?? env['PORT'];
  if (port) {
    // Digits only: Number() would also take "0x50", "1e3" and " 80".
    const parsed = /^\d{1,5}$/.test(port) ? Number(port) : Number.NaN;
    if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535) issues.push({ path: 'env SLUICE_PORT', message: `"${port}" is not a port number (0-65535)` });
    else server.port = parsed;
  }
  let level: LogLevel = raw.log?.level ?? defaults.log.level;
  const envLevel = env['SLUICE_LOG_LEVEL'];
  if (envLevel) {
    if (isLogLevel(envLevel)) level = envLevel;
    else issues.push({ path: 'env SLUICE_LOG_LEVEL', message: `"${envLevel}" is not a level; use fatal, error, warn, info, debug, trace or silent` });
  }

  const outboundProxy: { httpProxy?: string; httpsProxy?: string; noProxy?: string } = {};
  const httpsProxy = env['HTTPS_PROXY'] ?? env['https_proxy'];
  const httpProxy = env['HTTP_PROXY'] ?? env['http_proxy'];
  const noProxy = env['NO_PROXY'] ?? env['no_proxy'];
  if (httpsProxy) outboundProxy.httpsProxy = httpsProxy;
  if (httpProxy) outboundProxy.httpProxy = httpProxy;
  if (noProxy) outboundProxy.noProxy = noProxy;

  const auth = resolveAuth(raw.auth, server.host, env, issues);
  const store = { url: env['SLUICE_STORE_URL'] || raw.store?.url || defaults.store.url };
  if (!/^(sqlite:.+|postgres(ql)?:\/\/.+)$/.test(store.url)) issues.push({ path: 'env SLUICE_STORE_URL', message: `"${store.url}" is not a store URL; use sqlite:./data/sluice.db or postgres://user@host:5432/database` });
  const limits = {
    perUser: resolveLimits(raw.limits?.perUser ?? {}),
    users: Object.fromEntries(Object.entries(raw.limits?.users ?? {}).map(([userId, userLimits]) => [userId, resolveLimits(userLimits)])),
  };

  const generations = withDefaults(defaults.generations, raw.generations);
  const websocket = withDefaults(defaults.websocket, raw.websocket);
  const redisUrl = env['SLUICE_REDIS_URL'] || raw.cluster?.redisUrl;
  if (env['SLUICE_REDIS_URL'] && !/^rediss?:\/\/.+/.test(env['SLUICE_REDIS_URL'])) issues.push({ path: 'env SLUICE_REDIS_URL', message: `"${env['SLUICE_REDIS_URL']}" is not a redis:// URL` });
  const clusterNodesEnv = env['SLUICE_REDIS_CLUSTER_NODES'];
  const clusterNodes = clusterNodesEnv ? clusterNodesEnv.split(',').map((node) => node.trim()).filter((node) => node !== '') : raw.cluster?.redisClusterNodes;
  if (clusterNodesEnv) {
    const bad = clusterNodes?.find((node) => !/^rediss?:\/\/.+/.test(node));
    if (bad !== undefined || clusterNodes?.length === 0) issues.push({ path: 'env SLUICE_REDIS_CLUSTER_NODES', message: `"${bad ?? clusterNodesEnv}" is not a redis:// URL; list the nodes comma-separated, such as redis://10.0.0.1:6379,redis://10.0.0.2:6379` });
  }
  if (redisUrl && clusterNodes) {
    issues.push({ path: 'cluster.redisClusterNodes', message: 'set either cluster.redisUrl (one Redis) or cluster.redisClusterNodes (a Redis Cluster), not both; SLUICE_REDIS_URL and SLUICE_REDIS_CLUSTER_NODES count as the settings they override' });
  }
  const redis = clusterNodes && clusterNodes.length > 0 ? { clusterNodes } : redisUrl ? { url: redisUrl } : undefined;
  const cluster = redis ? { redis, nodeId: raw.cluster?.nodeId ?? env['SLUICE_NODE_ID'] ?? `${hostname()}:${process.pid.toString()}`, keyPrefix: raw.cluster?.keyPrefix ?? 'sluice:', presenceTtlMs: raw.cluster?.presenceTtlMs ?? 15_000, logFlushMs: raw.cluster?.logFlushMs ?? 50, recentHealthMs: raw.cluster?.recentHealthMs ?? 1000 } : undefined;
  if (!redis && (raw.cluster?.nodeId !== undefined || raw.cluster?.keyPrefix !== undefined || raw.cluster?.presenceTtlMs !== undefined || raw.cluster?.logFlushMs !== undefined || raw.cluster?.recentHealthMs !== undefined)) issues.push({ path: 'cluster.redisUrl', message: 'cluster settings need cluster.redisUrl or cluster.redisClusterNodes (or SLUICE_REDIS_URL / SLUICE_REDIS_CLUSTER_NODES)' });
  const conversations = withDefaults(defaults.conversations, raw.conversations);

  const hub = withDefaults(defaults.hub, raw.hub);
  const metrics = resolveMetrics(raw.metrics, server, issues);
  const tracing = raw.tracing
    ? {
        otlpEndpoint: raw.tracing.otlpEndpoint,
        sampleRatio: raw.tracing.sampleRatio ?? defaults.tracing.sampleRatio,
        serviceName: raw.tracing.serviceName ?? defaults.tracing.serviceName,
        headers: raw.tracing.headers ?? {},
        exportDelayMs: raw.tracing.exportDelayMs ?? defaults.tracing.exportDelayMs,
      }
    : undefined;

  const router = {
    retry: withDefaults(defaults.router.retry, raw.router?.retry),
    cooldown: withDefaults(defaults.router.cooldown, raw.router?.cooldown),
    queueTimeoutMs: raw.router?.queueTimeoutMs ?? defaults.router.queueTimeoutMs,
  };
  if (router.cooldown.initialMs > router.cooldown.maxMs) issues.push({ path: 'router.cooldown.initialMs', message: `${router.cooldown.initialMs.toString()} is above maxMs (${router.cooldown.maxMs.toString()}); lower it or raise maxMs` });

  return { server, log: { level, requests: raw.log?.requests ?? defaults.log.requests }, providers, models, prices, defaultModel: defaultModel ?? '', router, outboundProxy, auth, store, limits, generations, conversations, websocket, hub, metrics, ...(cluster ? { cluster } : {}), ...(tracing ? { tracing } : {}) };
}

/** `metrics.listen` split into host and port; its port must not be the main one. */
function resolveMetrics(raw: RawConfig['metrics'], server: Config['server'], issues: ConfigIssue[]): Config['metrics'] {
  const auth = raw?.auth ?? defaults.metrics.auth;
  if (raw?.listen === undefined) return { auth };
  const colon = raw.listen.lastIndexOf(':');
  // The schema let through only host:port, the host bracketed when it is IPv6.
  const host = raw.listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(raw.listen.slice(colon + 1));
  if (port > 65535) issues.push({ path: 'metrics.listen', message: `${port.toString()} is not a port number (0-65535)` });
  // Two listeners on one port collide unless both name distinct addresses; one rule is simpler to follow.
  else if (port !== 0 && port === server.port) issues.push({ path: 'metrics.listen', message: `port ${port.toString()} is the main port (server.port); choose another port` });
  return { auth, listen: { host, port } };
}

const loopbackHosts = new Set(['127.0.0.1', '::1', 'localhost']);

function resolveAuth(raw: RawConfig['auth'], host: string, env: Env, issues: ConfigIssue[]): Config['auth'] {
  const mode = raw?.mode ?? defaults.auth.mode;
  if (mode === 'none' && !loopbackHosts.has(host) && !host.startsWith('127.')) {
    issues.push({ path: 'auth.mode', message: `"none" lets anyone call the gateway, so it is refused on ${host}; bind server.host to 127.0.0.1 or use keys` });
  }
  const auth: { -readonly [K in keyof Config['auth']]: Config['auth'][K] } = { mode, ticketTtlMs: raw?.ticketTtlMs ?? defaults.auth.ticketTtlMs };
  const adminKey = env['SLUICE_ADMIN_KEY'];
  if (adminKey) auth.adminKey = adminKey;
  const jwt = raw?.jwt;
  if (mode === 'jwt' || mode === 'both') {
    if (!jwt || (jwt.secret === undefined) === (jwt.jwksUrl === undefined)) {
      issues.push({ path: 'auth.jwt', message: `mode "${mode}" needs exactly one of auth.jwt.secret (HS256) or auth.jwt.jwksUrl (RS256/ES256)` });
    } else {
      auth.jwt = { ...withDefaults(defaults.auth.jwt, jwt), ...pickDefined({ secret: jwt.secret, jwksUrl: jwt.jwksUrl, issuer: jwt.issuer, audience: jwt.audience }) };
    }
  } else if (jwt) {
    issues.push({ path: 'auth.jwt', message: `JWT settings are ignored in mode "${mode}"; set auth.mode to jwt or both, or remove auth.jwt` });
  }
  return auth;
}

/** Config limits as the limiter reads them: budgets in whole micro-units. */
function resolveLimits(raw: LimitsConfig): Limits {
  const { dailyBudget, monthlyBudget, ...counts } = raw;
  return {
    ...pickDefined(counts),
    ...(dailyBudget !== undefined ? { dailyBudgetMicros: budgetMicros(dailyBudget) } : {}),
    ...(monthlyBudget !== undefined ? { monthlyBudgetMicros: budgetMicros(monthlyBudget) } : {}),
  };
}

function pickDefined<T extends Record<string, unknown>>(value: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

/** Overlays the set values of `overrides` on `base` (zod leaves absent optional keys undefined). */
function withDefaults<T extends object>(base: T, overrides: { [K in keyof T]?: T[K] | undefined } | undefined): { -readonly [K in keyof T]: T[K] } {
  const result = { ...base };
  for (const [key, value] of Object.entries(overrides ?? {})) if (value !== undefined) (result as Record<string, unknown>)[key] = value;
  return result;
}

function firstProviderModel(providers: Record<string, ResolvedProvider>): string | undefined {
  const first = Object.values(providers)[0];
  const model = first?.models?.[0];
  return first && model ? `${first.id}/${model}` : undefined;
}

function isLogLevel(value: string): value is LogLevel {
  return ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(value);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
