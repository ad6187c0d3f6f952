// createApp(deps): wiring only. It builds the services (providers, authenticator, limits, the
// generation service, the hub), the route table, the request handler and the WebSocket gateway,
// and puts them behind one HTTP server; it does no I/O until listen() is called. The store comes
// in already open (createStore is async), and its owner closes it. What a request goes through is
// src/http/request-handler.ts; the routes are src/http/route-table.ts; the stop is
// src/http/graceful-shutdown.ts.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Config } from './config/config.js';
import { ConfigError } from './config/load.js';
import { planReload, type ReloadOutcome } from './config/reload-plan.js';
import { SluiceError } from './errors/sluice-error.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { createLogger, type Logger } from './observability/logger.js';
import type { Tracing } from './observability/tracing.js';
import { createProviderRegistry, type ProviderRegistry } from './providers/registry.js';
import { createModelRouter, type ModelRouter } from './routing/model-router.js';
import { createGenerationService, type GenerationService } from './relay/generation-service.js';
import { createGenerationIdFactory } from './relay/generation-id.js';
import { createEmbeddingService, type EmbeddingService } from './relay/embedding-service.js';
import { createMemoryGenerationRegistry, type GenerationRegistry } from './relay/generation-registry.js';
import type { Store } from './store/store.js';
import type { Principal } from './contract/principal.js';
import { createKeyService, type KeyService } from './auth/api-keys.js';
import { createJwtVerifier } from './auth/jwt.js';
import { createMemoryTicketStore, type TicketStore } from './auth/tickets.js';
import { createAuthenticator, type Authenticator } from './auth/authenticate.js';
import { createLimiter } from './limits/create-limiter.js';
import { servedPrice } from './config/price.js';
import { createMemoryLimitState } from './limits/memory-limit-state.js';
import type { LimitState } from './limits/limit-state.js';
import type { HealthStore } from './routing/health.js';
import { createMemoryHealthStore } from './routing/memory-health-store.js';
import { cooldownPolicyOf } from './routing/cooldown-policy.js';
import { createProviderQuotas } from './routing/provider-quotas.js';
import { createUpstreamPools, type UpstreamPools } from './routing/upstream-pools.js';
import type { Hub } from './hub/hub.js';
import { createMemoryHub } from './hub/memory-hub.js';
import { createRequestHandler, headerValue } from './http/request-handler.js';
import { isWebSocketUpgrade, serveIgnoringUpgrade } from './http/ignored-upgrade.js';
import { createResumeGrants, type ResumeGrants } from './http/resume-grants.js';
import { createMetricsRouteTable, createRouteTable, nativeChatDependencies, type RouteTableDependencies } from './http/route-table.js';
import { createNativeChats, type NativeChats } from './http/routes/native-chat.js';
import type { Router } from './http/router.js';
import { createWebSocketGateway } from './http/ws/websocket-gateway.js';
import { shutDownGracefully } from './http/graceful-shutdown.js';

export interface AppDependencies {
  config: Config;
  logger?: Logger;
  metrics?: Metrics;
  now?: () => number;
  /** Generation ids: short, URL- and header-safe ASCII. */
  createId?: () => string;
  /** Replaces every provider's connection pool (tests). */
  dispatcher?: Dispatcher;
  /** Keys, usage and conversations; open, and closed by whoever opened it. */
  store: Store;
  /** Single-use tickets; in memory unless given (cluster mode shares them). */
  tickets?: TicketStore;
  /** Where rate-limit counters live; in memory unless given. */
  limitState?: LimitState;
  /** Where upstream health (cooldowns, disabled keys, in-flight counts) lives; in memory unless given (cluster mode shares it). */
  healthStore?: HealthStore;
  /** Where resumable generations are found by id; in memory unless given. */
  registry?: GenerationRegistry;
  /** Extra readiness (cluster mode: Redis reachable); /readyz answers 503 with its reason when not ready. */
  readiness?: () => { ready: boolean; reason?: string };
  /** The per-user connection hub; in memory unless given (cluster mode shares it). */
  hub?: Hub;
  /**
   * Reads the config again (sluice serve: the --config file, throwing ConfigError when it has
   * problems). Without it, POST /admin/reload answers `reload_unavailable`.
   */
  readConfig?: () => Config;
  /**
   * The tracer, required when `config.tracing` is set (startTracing(config.tracing) makes it; the
   * OpenTelemetry SDK is loaded only then). Closed, with its last spans sent, on shutdown.
   */
  tracing?: Tracing;
}

export interface App {
  /** The config new requests run on (it changes on a reload). */
  readonly config: Config;
  readonly server: Server;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly generations: GenerationService;
  readonly store: Store;
  readonly keys: KeyService;
  /** Per-user connections and push (GET /api/events, POST /api/push). */
  readonly hub: Hub;
  /** The listener of /metrics alone, when metrics.listen is set; /metrics is on `server` otherwise. */
  readonly metricsServer?: Server;
  /**
   * Listens on the configured host and port (port 0 picks a free one), and on metrics.listen when
   * set; resolves with the main address. If either fails, neither is left listening.
   */
  listen(): Promise<AddressInfo>;
  /**
   * Graceful stop: refuses new requests, lets running generations finish for up to
   * `drainTimeoutMs`, ends the rest with a `shutting_down` error event, then closes (the metrics
   * listener last, so the drain can still be watched).
   */
  shutdown(drainTimeoutMs?: number): Promise<void>;
  /**
   * Applies a new, valid config to new requests at once; running streams finish on what they
   * started with. Settings fixed at start (listener, store, cluster, …) keep their values and are
   * listed in `restartRequired` (docs/reload.md).
   */
  reload(next: Config): ReloadOutcome;
  /** Re-reads the config with `readConfig` and applies it; throws ConfigError (nothing changes) when it has problems. */
  reloadFromSource(): ReloadOutcome;
}

export function createApp(dependencies: AppDependencies): App {
  const { store, tracing } = dependencies;
  if (dependencies.config.tracing && !tracing) throw new Error('config.tracing is set but no tracer was given: pass `tracing: await startTracing(config.tracing)` to createApp');
  const lasting = createLastingServices(dependencies, () => runtime);
  const { now, logger, metrics, generations, hub, keys } = lasting;
  const build = (config: Config): Runtime => createRuntime(config, dependencies, lasting, reload);
  const reload = createReloader({ dependencies, lasting, build, current: () => runtime, swap: (next) => (runtime = next) });
  let runtime: Runtime = build(dependencies.config);
  // The handler, the WebSocket gateway and the generation service read the runtime through
  // getters on every request, socket or generation, so a reload swaps what new work sees and
  // nothing else (docs/reload.md).
  const handle = createRequestHandler({
    get router() {
      return runtime.routes;
    },
    get authenticator() {
      return runtime.authenticator;
    },
    resumeGrants: lasting.resumeGrants,
    logger,
    metrics,
    now,
    ...(tracing ? { tracing } : {}),
  });
  const websockets = createWebSocketGateway({
    get config() {
      return runtime.config;
    },
    get chats() {
      return runtime.chats;
    },
    hub,
    logger,
    now,
    createId: lasting.createId,
    ...(tracing ? { tracing } : {}),
    // Browsers cannot set headers on a WebSocket: a ticket in the URL, or Authorization where the client can send it.
    authenticate: (request, url) =>
      runtime.authenticator.authenticate({ authorization: request.headers.authorization, ticket: url.searchParams.get('ticket') ?? undefined, actAs: headerValue(request.headers['x-sluice-user']) }),
  });

  const startConfig = dependencies.config;
  const server = createServer({ keepAliveTimeout: 65_000 }, (request, response) => void handle(request, response));
  // Only a WebSocket upgrade is Sluice's; `Upgrade: h2c` and the like are served as the HTTP/1.1 requests they also are.
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (isWebSocketUpgrade(request)) websockets.handleUpgrade(request, socket, head);
    else serveIgnoringUpgrade(request, socket, head, (message, response) => void handle(message, response));
  });
  // metrics.listen: /metrics on a server of its own, through the same handler (access, request log).
  // Where /metrics is served is fixed at start; a reload cannot move it.
  const metricsListen = startConfig.metrics.listen;
  let metricsServer: Server | undefined;
  if (metricsListen) {
    const metricsRoutes = createMetricsRouteTable(startConfig, metrics);
    const handleMetrics = createRequestHandler({
      router: metricsRoutes,
      get authenticator() {
        return runtime.authenticator;
      },
      resumeGrants: lasting.resumeGrants,
      logger,
      metrics,
      now,
    });
    metricsServer = createServer({ keepAliveTimeout: 65_000 }, (request, response) => void handleMetrics(request, response));
  }

  return {
    get config() {
      return runtime.config;
    },
    server,
    logger,
    metrics,
    generations,
    store,
    keys,
    hub,
    ...(metricsServer ? { metricsServer } : {}),
    reload: (next) => reload.apply(next),
    reloadFromSource: () => reload.fromSource(),
    listen: async () => {
      const address = await listen(server, startConfig.server);
      if (metricsServer && metricsListen) {
        await listen(metricsServer, metricsListen).catch(async (error: unknown) => {
          await closeServer(server);
          throw error;
        });
      }
      return address;
    },
    shutdown: async (drainTimeoutMs = startConfig.server.drainTimeoutMs) => {
      await shutDownGracefully({ server, generations, hub, websockets, providers: runtime.providers, logger }, drainTimeoutMs);
      await reload.retired();
      if (metricsServer) await closeServer(metricsServer);
      await tracing?.close().catch((error: unknown) => logger.warn({ err: error }, 'tracing: the last spans could not be sent'));
    },
  };
}

/** What lives as long as the process: built once from the config the app started with. */
interface LastingServices {
  readonly now: () => number;
  readonly createId: () => string;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly keys: KeyService;
  readonly tickets: TicketStore;
  readonly resumeGrants: ResumeGrants;
  readonly registry: GenerationRegistry;
  readonly generations: GenerationService;
  /** POST /v1/embeddings: admission and usage rows like generations, without one. */
  readonly embeddings: EmbeddingService;
  readonly hub: Hub;
  readonly healthStore: HealthStore;
  /** The pool router's state that must outlive a reload: health (cooldowns, disabled keys, in-flight) and provider budgets. */
  readonly pools: UpstreamPools;
}

/**
 * What a reload rebuilds from the new config: the providers (their connection pools), the model
 * router, the authenticator (JWT settings) and the route table, which reads the config per route.
 */
interface Runtime {
  readonly config: Config;
  readonly providers: ProviderRegistry;
  readonly modelRouter: ModelRouter;
  readonly authenticator: Authenticator;
  readonly routes: Router;
  readonly chats: NativeChats;
}

/** Builds each lasting service from the config, taking the ones given in `dependencies` as they are. */
function createLastingServices(dependencies: AppDependencies, current: () => Runtime): LastingServices {
  const { config, store } = dependencies;
  const now = dependencies.now ?? Date.now;
  const createId = dependencies.createId ?? createGenerationIdFactory();
  const logger = dependencies.logger ?? createLogger(config.log.level);
  const metrics = dependencies.metrics ?? createMetrics();
  const keys = createKeyService({ keys: store.keys, now });
  const tickets = dependencies.tickets ?? createMemoryTicketStore({ now });
  // One state for the callers' limits and the providers' budgets: shared by the nodes in a cluster.
  const limitState = dependencies.limitState ?? createMemoryLimitState();
  const limiter = createLimiter({
    state: limitState,
    now,
    seedQuota: (subject, since) => store.usage.tokensSince(subject, since),
    seedBudget: (subject, currency, since) => store.usage.costSince(subject, currency, since),
  });
  const registry = dependencies.registry ?? createMemoryGenerationRegistry({ retentionMs: config.generations.retentionMs });
  const healthStore = dependencies.healthStore ?? createMemoryHealthStore(cooldownPolicyOf(config));
  const quotas = createProviderQuotas({ state: limitState, now, limitsOf: (providerId) => current().config.providers[providerId]?.limits });
  const pools = createUpstreamPools({ health: healthStore, quotas, now, logger, metrics });
  const generations = createGenerationService({
    pools,
    registry,
    resumeGraceMs: config.generations.resumeGraceMs,
    // Read on every start: a generation resolves its model with the runtime of the moment it starts.
    get router() {
      return current().modelRouter;
    },
    metrics,
    logger,
    now,
    createId,
    limiter,
    usage: store.usage,
    requestLog: { store: store.requestLog, enabled: () => current().config.log.requests },
    userLimits: (userId) => {
      const { limits } = current().config;
      return limits.users[userId] ?? limits.perUser;
    },
    priceOf: (model, deployment) => servedPrice(current().config, model, deployment),
  });
  const embeddings = createEmbeddingService({
    // Read on every request, as for generations.
    get router() {
      return current().modelRouter;
    },
    pools,
    limiter,
    userLimits: (userId) => {
      const { limits } = current().config;
      return limits.users[userId] ?? limits.perUser;
    },
    recordUsage: (row) => generations.recordUsage(row),
    priceOf: (model, deployment) => servedPrice(current().config, model, deployment),
    accepting: () => generations.accepting,
    now,
  });
  const hub = dependencies.hub ?? createMemoryHub({ now, retention: { count: config.hub.retentionCount, ageMs: config.hub.retentionMs } });
  const resumeGrants = createResumeGrants({ tickets, logger, now, generationRetentionMs: config.generations.retentionMs });
  return { now, createId, logger, metrics, keys, tickets, resumeGrants, registry, generations, embeddings, hub, healthStore, pools };
}

/** The config-derived half of the app, for the config the app starts with or reloads. */
function createRuntime(config: Config, dependencies: AppDependencies, lasting: LastingServices, reload: Reloader): Runtime {
  const { now, keys, tickets } = lasting;
  const providers = createProviderRegistry(config, { now, ...(dependencies.dispatcher ? { dispatcher: dependencies.dispatcher } : {}) });
  const modelRouter = createModelRouter(config, providers);
  const anonymous: Principal = { userId: 'anonymous', role: 'service', via: 'anonymous', keyLimits: {} };
  const authenticator = createAuthenticator({
    mode: config.auth.mode,
    keys,
    tickets,
    anonymousPrincipal: anonymous,
    ...(config.auth.jwt ? { jwt: createJwtVerifier(config.auth.jwt) } : {}),
  });
  const routeDependencies: RouteTableDependencies = {
    ...lasting,
    config,
    modelRouter,
    store: dependencies.store,
    reload: () => reload.fromSource(),
    ...(dependencies.readiness ? { readiness: dependencies.readiness } : {}),
  };
  return { config, providers, modelRouter, authenticator, routes: createRouteTable(routeDependencies), chats: createNativeChats(nativeChatDependencies(routeDependencies)) };
}

/** Swaps the runtime for one built from a new config; see docs/reload.md. */
interface Reloader {
  /** Applies `next` (already validated) to new requests; running ones finish on what they started with. */
  apply(next: Config): ReloadOutcome;
  /** Reads the config again from where it came from (sluice serve: the --config file) and applies it. */
  fromSource(): ReloadOutcome;
  /** Settles when the providers replaced by reloads are closed (shutdown waits for it). */
  retired(): Promise<void>;
}

interface ReloaderParts {
  readonly dependencies: AppDependencies;
  readonly lasting: LastingServices;
  readonly build: (config: Config) => Runtime;
  readonly current: () => Runtime;
  readonly swap: (next: Runtime) => void;
}

function createReloader(parts: ReloaderParts): Reloader {
  const { dependencies, lasting } = parts;
  const closing = new Set<Promise<void>>();
  const reloader: Reloader = {
    apply(next) {
      const previous = parts.current();
      const plan = planReload(previous.config, next);
      // Built completely before the swap: a config that cannot be built leaves the old one running.
      parts.swap(parts.build(plan.config));
      lasting.logger.level = plan.config.log.level;
      // The replaced providers' connection pools close once the generations that may still use
      // them (every one running at the swap) have ended.
      const running = [...lasting.generations.active].map((generation) => generation.done);
      const closed = Promise.allSettled(running)
        .then(() => Promise.allSettled([...previous.providers.values()].map((provider) => provider.close())))
        .then(() => undefined);
      closing.add(closed);
      void closed.finally(() => closing.delete(closed));
      const outcome = { changed: plan.changed, restartRequired: plan.restartRequired };
      lasting.logger.info(outcome, 'configuration reloaded');
      if (plan.restartRequired.length > 0) lasting.logger.warn({ restartRequired: plan.restartRequired }, 'some changed settings apply only after a restart');
      return outcome;
    },
    fromSource() {
      if (!dependencies.readConfig) throw new SluiceError('reload_unavailable');
      try {
        return reloader.apply(dependencies.readConfig());
      } catch (error) {
        if (error instanceof ConfigError) lasting.logger.error({ issues: error.issues }, 'configuration not reloaded: the new one has errors; the running one stays');
        throw error;
      }
    },
    retired: () => Promise.all([...closing]).then(() => undefined),
  };
  return reloader;
}

/** Listens on `host` and `port` (port 0 picks a free one); rejects with the socket's error (EADDRINUSE, …). */
function listen(server: Server, { host, port }: { host: string; port: number }): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Closes a server that needs no drain (the metrics listener; a main server whose partner failed), keep-alive sockets included. */
function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  return closed;
}
