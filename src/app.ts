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
import { createMetrics, type Metrics } from './observability/metrics.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createProviderRegistry, type ProviderRegistry } from './providers/registry.js';
import { createModelRouter, type ModelRouter } from './routing/model-router.js';
import { createGenerationService, type GenerationService } from './relay/generation-service.js';
import { createGenerationIdFactory } from './relay/generation-id.js';
import { createMemoryGenerationRegistry, type GenerationRegistry } from './relay/generation-registry.js';
import type { Store } from './store/store.js';
import type { Principal } from './contract/principal.js';
import { createKeyService, type KeyService } from './auth/api-keys.js';
import { createJwtVerifier } from './auth/jwt.js';
import { createMemoryTicketStore, type TicketStore } from './auth/tickets.js';
import { createAuthenticator, type Authenticator } from './auth/authenticate.js';
import { createLimiter } from './limits/create-limiter.js';
import { createMemoryLimitState } from './limits/memory-limit-state.js';
import type { LimitState } from './limits/limit-state.js';
import type { HealthStore } from './routing/health.js';
import { createMemoryHealthStore } from './routing/memory-health-store.js';
import { cooldownPolicyOf } from './routing/cooldown-policy.js';
import type { Hub } from './hub/hub.js';
import { createMemoryHub } from './hub/memory-hub.js';
import { createRequestHandler, headerValue } from './http/request-handler.js';
import { createResumeGrants, type ResumeGrants } from './http/resume-grants.js';
import { createRouteTable, nativeChatDependencies } from './http/route-table.js';
import { createNativeChats } from './http/routes/native-chat.js';
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
}

export interface App {
  readonly config: Config;
  readonly server: Server;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly generations: GenerationService;
  readonly store: Store;
  readonly keys: KeyService;
  /** Per-user connections and push (GET /api/events, POST /api/push). */
  readonly hub: Hub;
  /** Listens on the configured host and port (port 0 picks a free one). */
  listen(): Promise<AddressInfo>;
  /**
   * Graceful stop: refuses new requests, lets running generations finish for up to
   * `drainTimeoutMs`, ends the rest with a `shutting_down` error event, then closes.
   */
  shutdown(drainTimeoutMs?: number): Promise<void>;
}

export function createApp(dependencies: AppDependencies): App {
  const { config, store } = dependencies;
  const services = createServices(dependencies);
  const { now, logger, metrics, generations, hub, keys, authenticator } = services;
  const routeDependencies = { ...services, config, store, ...(dependencies.readiness ? { readiness: dependencies.readiness } : {}) };
  const handle = createRequestHandler({ router: createRouteTable(routeDependencies), authenticator, resumeGrants: services.resumeGrants, logger, metrics, now });
  const websockets = createWebSocketGateway({
    config,
    hub,
    chats: createNativeChats(nativeChatDependencies(routeDependencies)),
    logger,
    now,
    createId: services.createId,
    // Browsers cannot set headers on a WebSocket: a ticket in the URL, or Authorization where the client can send it.
    authenticate: (request, url) =>
      authenticator.authenticate({ authorization: request.headers.authorization, ticket: url.searchParams.get('ticket') ?? undefined, actAs: headerValue(request.headers['x-sluice-user']) }),
  });

  const server = createServer({ keepAliveTimeout: 65_000 }, (request, response) => void handle(request, response));
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => websockets.handleUpgrade(request, socket, head));

  return {
    config,
    server,
    logger,
    metrics,
    generations,
    store,
    keys,
    hub,
    listen: () => listen(server, config),
    shutdown: (drainTimeoutMs = config.server.drainTimeoutMs) => shutDownGracefully({ server, generations, hub, websockets, providers: services.providers, logger }, drainTimeoutMs),
  };
}

/** What the app is made of, before any route or socket. */
interface Services {
  readonly now: () => number;
  readonly createId: () => string;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly providers: ProviderRegistry;
  readonly modelRouter: ModelRouter;
  readonly keys: KeyService;
  readonly tickets: TicketStore;
  readonly resumeGrants: ResumeGrants;
  readonly authenticator: Authenticator;
  readonly registry: GenerationRegistry;
  readonly generations: GenerationService;
  readonly hub: Hub;
  readonly healthStore: HealthStore;
}

/** Builds each service from the config, taking the ones given in `dependencies` as they are. */
function createServices(dependencies: AppDependencies): Services {
  const { config, store } = dependencies;
  const now = dependencies.now ?? Date.now;
  const createId = dependencies.createId ?? createGenerationIdFactory();
  const logger = dependencies.logger ?? createLogger(config.log.level);
  const metrics = dependencies.metrics ?? createMetrics();
  const providers = createProviderRegistry(config, { now, ...(dependencies.dispatcher ? { dispatcher: dependencies.dispatcher } : {}) });
  const modelRouter = createModelRouter(config, providers);
  const keys = createKeyService({ keys: store.keys, now });
  const tickets = dependencies.tickets ?? createMemoryTicketStore({ now });
  const anonymous: Principal = { userId: 'anonymous', role: 'service', via: 'anonymous', keyLimits: {} };
  const authenticator = createAuthenticator({
    mode: config.auth.mode,
    keys,
    tickets,
    anonymousPrincipal: anonymous,
    ...(config.auth.jwt ? { jwt: createJwtVerifier(config.auth.jwt) } : {}),
  });
  const limiter = createLimiter({
    state: dependencies.limitState ?? createMemoryLimitState(),
    now,
    seedQuota: (subject, since) => store.usage.tokensSince(subject, since),
  });
  const registry = dependencies.registry ?? createMemoryGenerationRegistry({ retentionMs: config.generations.retentionMs });
  const generations = createGenerationService({
    registry,
    resumeGraceMs: config.generations.resumeGraceMs,
    router: modelRouter,
    metrics,
    logger,
    now,
    createId,
    limiter,
    usage: store.usage,
    userLimits: (userId) => config.limits.users[userId] ?? config.limits.perUser,
  });
  const hub = dependencies.hub ?? createMemoryHub({ now, retention: { count: config.hub.retentionCount, ageMs: config.hub.retentionMs } });
  const resumeGrants = createResumeGrants({ tickets, logger, now, generationRetentionMs: config.generations.retentionMs });
  const healthStore = dependencies.healthStore ?? createMemoryHealthStore(cooldownPolicyOf(config));
  return { now, createId, logger, metrics, providers, modelRouter, keys, tickets, resumeGrants, authenticator, registry, generations, hub, healthStore };
}

/** Listens on the configured host and port (port 0 picks a free one). */
function listen(server: Server, config: Config): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.server.port, config.server.host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
