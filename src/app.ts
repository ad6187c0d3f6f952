// createApp(deps): wiring only. It builds the providers, the router, the authenticator, the limits,
// the generation service and the HTTP server, and does no I/O until listen() is called. The store
// comes in already open (createStore is async), and its owner closes it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { Dispatcher } from 'undici';
import type { Config } from './config/config.js';
import { SluiceError, toSluiceError } from './errors/sluice-error.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createProviderRegistry } from './providers/registry.js';
import { createModelRouter } from './routing/model-router.js';
import { createGenerationService, type GenerationService } from './relay/generation-service.js';
import { createGenerationIdFactory } from './relay/generation-id.js';
import { Router } from './http/router.js';
import { chooseRequestId, type RequestContext } from './http/request-context.js';
import { sendError } from './http/respond.js';
import { createChatCompletionsRoute } from './http/routes/chat-completions.js';
import { createAdminKeysRoutes } from './http/routes/admin-keys.js';
import { createAdminUsageRoute } from './http/routes/admin-usage.js';
import { createTicketsRoute } from './http/routes/tickets.js';
import { createNativeChatRoutes, createNativeChats } from './http/routes/native-chat.js';
import { createWebSocketGateway } from './http/ws/websocket-gateway.js';
import { createConversationRoutes } from './http/routes/conversations.js';
import { createMemoryGenerationRegistry, type GenerationRegistry } from './relay/generation-registry.js';
import { parseNativeEventId } from './relay/encoders/native-events.js';
import type { Store } from './store/store.js';
import type { Principal } from './contract/principal.js';
import { createKeyService, type KeyService } from './auth/api-keys.js';
import { createJwtVerifier } from './auth/jwt.js';
import { createMemoryTicketStore, type TicketStore } from './auth/tickets.js';
import { createAuthenticator } from './auth/authenticate.js';
import { createLimiter } from './limits/create-limiter.js';
import { createMemoryLimitState } from './limits/memory-limit-state.js';
import type { LimitState } from './limits/limit-state.js';
import { createMetricsRoute, createModelsRoute, createReadyRoute, healthRoute } from './http/routes/operations.js';
import type { Hub } from './hub/hub.js';
import { createMemoryHub } from './hub/memory-hub.js';
import { isPushId } from './hub/hub.js';
import { createHubRoutes } from './http/routes/hub-routes.js';
import { createPlaygroundRoutes } from './http/routes/playground.js';

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
  const { config } = dependencies;
  const now = dependencies.now ?? Date.now;
  const createId = dependencies.createId ?? createGenerationIdFactory();
  const logger = dependencies.logger ?? createLogger(config.log.level);
  const metrics = dependencies.metrics ?? createMetrics();
  const providers = createProviderRegistry(config, { now, ...(dependencies.dispatcher ? { dispatcher: dependencies.dispatcher } : {}) });
  const modelRouter = createModelRouter(config, providers);
  const { store } = dependencies;
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

  const router = new Router()
    .add('POST', '/v1/chat/completions', createChatCompletionsRoute({ config, generations, metrics, now }))
    .add('GET', '/v1/models', createModelsRoute(modelRouter))
    .add('POST', '/api/tickets', createTicketsRoute({ tickets, ttlMs: config.auth.ticketTtlMs }))
    .add('GET', '/healthz', healthRoute, { access: 'public' })
    .add('GET', '/readyz', createReadyRoute(() => (generations.accepting ? (dependencies.readiness?.() ?? { ready: true }) : { ready: false, reason: 'shutting down' })), { access: 'public' })
    .add('GET', '/metrics', createMetricsRoute(metrics), { access: 'public' })
    .add('GET', '/admin/usage', createAdminUsageRoute({ usage: store.usage, now }), { access: 'admin' });
  const nativeDependencies = {
    config,
    generations,
    registry,
    conversations: store.conversations,
    metrics,
    now,
    onStoreError: (error: unknown) => logger.error({ err: error }, 'conversation turn not stored'),
    bindTicket: (ticket: string, principal: Principal, generationId: string) => grantResume(ticket, principal, generationId, now() + config.generations.retentionMs + resumeGrantMs),
  };
  router.addAll(createNativeChatRoutes(nativeDependencies));
  router.addAll(createConversationRoutes({ conversations: store.conversations }));
  createAdminKeysRoutes({ keys, store: store.keys, bodyLimitBytes: config.server.bodyLimitBytes, now }).forEach((route) => router.add(route.method, route.pattern, route.handler, { access: 'admin' }));
  const hub = dependencies.hub ?? createMemoryHub({ now, retention: { count: config.hub.retentionCount, ageMs: config.hub.retentionMs } });
  router.addAll(createHubRoutes({ hub, config, now, logger }));
  router.addAll(createPlaygroundRoutes({ logger }));
  const websockets = createWebSocketGateway({
    config,
    hub,
    chats: createNativeChats(nativeDependencies),
    logger,
    now,
    createId,
    // Browsers cannot set headers on a WebSocket: a ticket in the URL, or Authorization where the client can send it.
    authenticate: (request, url) =>
      authenticator.authenticate({ authorization: request.headers.authorization, ticket: url.searchParams.get('ticket') ?? undefined, actAs: headerValue(request.headers['x-sluice-user']) }),
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://sluice.invalid');
    const context: RequestContext = { requestId: chooseRequestId(request.headers['x-request-id'], randomUUID), startedAt: now(), route: 'unmatched', query: url.searchParams };
    response.setHeader('x-request-id', context.requestId);
    response.once('close', () => logRequest(context, request, response));
    try {
      const path = url.pathname;
      const match = router.match(request.method ?? 'GET', path);
      if (match.kind === 'not-found') throw new SluiceError('not_found', { message: `No route ${request.method ?? ''} ${path}.` });
      if (match.kind === 'method-not-allowed') {
        response.setHeader('allow', match.allowed.join(', '));
        throw new SluiceError('method_not_allowed', { message: `${path} accepts ${match.allowed.join(', ')}.` });
      }
      context.route = match.route.name;
      if (match.route.access !== 'public') {
        const ticket = match.route.tickets ? (url.searchParams.get('ticket') ?? undefined) : undefined;
        const principal = await authenticator
          .authenticate({ authorization: request.headers.authorization, ticket, actAs: headerValue(request.headers['x-sluice-user']) })
          .catch((error: unknown) => resumeWithSpentTicket(error, ticket, match.route.name, headerValue(request.headers['last-event-id']) ?? url.searchParams.get('lastEventId') ?? undefined));
        if (ticket !== undefined && principal.via === 'ticket') {
          context.ticket = ticket;
          // The hub channel is one long-lived stream that EventSource reopens with the same URL
          // (after hub.maxConnectionAgeMs, or a network drop): its ticket may reopen it, and only it.
          if (match.route.name === hubEventsRoute) grantResume(ticket, principal, hubEventsRoute, now() + hubResumeGrantMs);
        }
        if (!allows(match.route.access, principal)) {
          throw new SluiceError('forbidden', { message: `${path} needs ${match.route.access === 'admin' ? 'an admin' : 'a service or admin'} credential; this one has role "${principal.role}".` });
        }
        context.principal = principal;
      }
      await match.route.handler(context, request, response, match.params);
    } catch (thrown) {
      const error = toSluiceError(thrown);
      if (error.code === 'internal_error') logger.error({ err: error.cause, requestId: context.requestId }, 'request failed');
      context.errorCode = error.code;
      if (!response.headersSent) sendError(response, error);
      else response.destroy();
    }
  }

  /** Records a resume grant in the background; a failure (Redis down) only costs that reconnect. */
  function grantResume(ticket: string, principal: Principal, scope: string, untilMs: number): void {
    tickets.allowResume(ticket, principal, scope, untilMs).catch((error: unknown) => logger.warn({ err: error }, 'tickets: could not record a resume grant'));
  }

  /**
   * EventSource reconnects to the same URL, spent ticket and all, with Last-Event-ID: a ticket
   * that opened a generation may reopen that generation (and nothing else).
   */
  async function resumeWithSpentTicket(error: unknown, ticket: string | undefined, route: string, lastEventId: string | undefined): Promise<Principal> {
    if (!(error instanceof SluiceError) || error.code !== 'invalid_ticket' || ticket === undefined || lastEventId === undefined) throw error;
    const scope = route === hubEventsRoute ? (isPushId(lastEventId) ? hubEventsRoute : undefined) : parseNativeEventId(lastEventId)?.generationId;
    if (scope === undefined) throw error;
    return tickets.resume(ticket, scope).catch(() => Promise.reject(error));
  }

  function logRequest(context: RequestContext, request: IncomingMessage, response: ServerResponse): void {
    const status = response.headersSent ? response.statusCode : 499;
    const durationMs = now() - context.startedAt;
    metrics.requests.inc({ route: context.route, status: status.toString(), model: context.model ?? '', provider: context.provider ?? '' });
    logger.info(
      {
        requestId: context.requestId,
        method: request.method,
        userId: context.principal?.userId,
        keyId: context.principal?.keyId,
        route: context.route,
        status,
        model: context.model,
        provider: context.provider,
        stream: context.stream,
        outcome: context.outcome,
        errorCode: context.errorCode,
        timeToFirstTokenMs: context.timeToFirstTokenMs,
        durationMs,
        usage: context.usage,
      },
      'request',
    );
  }

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
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.server.port, config.server.host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    async shutdown(drainTimeoutMs = config.server.drainTimeoutMs) {
      generations.stopAccepting();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const running = [...generations.active];
      if (running.length > 0) {
        logger.info({ running: running.length, drainTimeoutMs }, 'draining running generations');
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, drainTimeoutMs)));
        await Promise.race([Promise.all(running.map((generation) => generation.done)), timedOut]);
        clearTimeout(timer);
        for (const generation of generations.active) generation.cancel(new SluiceError('shutting_down', { message: 'The gateway is shutting down; the answer was cut short.' }));
        await Promise.all([...running].map((generation) => generation.done));
      }
      // Hub clients are told to reconnect (to another node) before their sockets go.
      await hub.closeLocal().catch((error: unknown) => logger.warn({ err: error }, 'hub: closing connections at shutdown failed'));
      websockets.closeAll();
      // Let the last events and close frames reach the sockets, then drop what is left.
      await new Promise((resolve) => setTimeout(resolve, 50));
      server.closeAllConnections();
      await closed;
      await generations.flushUsage();
      await Promise.all([...providers.values()].map((provider) => provider.close()));
    },
  };
}

/** How long past its retention a spent ticket may still reopen the generation it started. */
const resumeGrantMs = 3_600_000;

const hubEventsRoute = '/api/events';
/** How long a ticket that opened the hub channel may reopen it: a working day of reconnects. */
const hubResumeGrantMs = 12 * 3_600_000;

function allows(access: 'caller' | 'service' | 'admin', principal: Principal): boolean {
  if (access === 'caller') return true;
  if (access === 'service') return principal.role === 'service' || principal.role === 'admin';
  return principal.role === 'admin';
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
