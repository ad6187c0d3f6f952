// Every HTTP route of the gateway in one table: the OpenAI-compatible routes, the native API, the
// hub, administration, operations and the playground, each with who may call it.
import type { ReloadOutcome } from '../config/reload-plan.js';
import { createAdminReloadRoute } from './routes/admin-reload.js';
import type { Config } from '../config/config.js';
import type { Principal } from '../contract/principal.js';
import type { KeyService } from '../auth/api-keys.js';
import type { TicketStore } from '../auth/tickets.js';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { GenerationRegistry } from '../relay/generation-registry.js';
import type { GenerationService } from '../relay/generation-service.js';
import type { ModelRouter } from '../routing/model-router.js';
import type { Store } from '../store/store.js';
import type { ResumeGrants } from './resume-grants.js';
import { Router, type RouteSpec } from './router.js';
import { createAdminKeysRoutes } from './routes/admin-keys.js';
import { createAdminUsageRoute } from './routes/admin-usage.js';
import { createAdminDeploymentsRoutes } from './routes/admin-deployments.js';
import type { UpstreamPools } from '../routing/upstream-pools.js';
import { createAdminConsoleRoutes } from './routes/admin-console.js';
import { createAdminLiveRoutes } from './routes/admin-live.js';
import { createAdminOverviewRoute } from './routes/admin-overview.js';
import { createAdminProvidersRoute } from './routes/admin-providers.js';
import { createAdminRequestsRoute } from './routes/admin-requests.js';
import { createAdminSessionRoute } from './routes/admin-session.js';
import type { HealthStore } from '../routing/health.js';
import { createChatCompletionsRoute } from './routes/chat-completions.js';
import { createConversationRoutes } from './routes/conversations.js';
import { createHubRoutes } from './routes/hub-routes.js';
import { createNativeChatRoutes, type NativeChatDependencies } from './routes/native-chat.js';
import { createMetricsRoute, createModelsRoute, createReadyRoute, healthRoute } from './routes/operations.js';
import { createPlaygroundRoutes } from './routes/playground.js';
import { createResponsesRoutes } from './routes/responses.js';
import { createMessagesRoutes } from './routes/messages.js';
import { createEmbeddingsRoute } from './routes/embeddings.js';
import type { EmbeddingService } from '../relay/embedding-service.js';
import { createTicketsRoute } from './routes/tickets.js';

export interface RouteTableDependencies {
  readonly config: Config;
  readonly generations: GenerationService;
  readonly embeddings: EmbeddingService;
  readonly registry: GenerationRegistry;
  readonly modelRouter: ModelRouter;
  /** The pool router's lasting state, for GET /admin/deployments and its reset. */
  readonly pools: UpstreamPools;
  readonly store: Store;
  readonly keys: KeyService;
  readonly tickets: TicketStore;
  readonly resumeGrants: ResumeGrants;
  readonly hub: Hub;
  /** Upstream target health, for GET /admin/providers. */
  readonly healthStore: HealthStore;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  /** Extra readiness (cluster mode: Redis reachable); /readyz answers 503 with its reason when not ready. */
  readonly readiness?: () => { ready: boolean; reason?: string };
  /** Re-reads and applies the config (POST /admin/reload). */
  readonly reload: () => ReloadOutcome;
}

export function createRouteTable(dependencies: RouteTableDependencies): Router {
  const { config, generations, modelRouter, store, keys, tickets, hub, metrics, logger, now } = dependencies;
  const isReady = () => (generations.accepting ? (dependencies.readiness?.() ?? { ready: true }) : { ready: false, reason: 'shutting down' });
  const router = new Router()
    .add('POST', '/v1/chat/completions', createChatCompletionsRoute({ config, generations, metrics, now }))
    .add('GET', '/v1/models', createModelsRoute(modelRouter))
    .add('POST', '/v1/embeddings', createEmbeddingsRoute({ config, embeddings: dependencies.embeddings }))
    .add('POST', '/api/tickets', createTicketsRoute({ tickets, ttlMs: config.auth.ticketTtlMs }))
    .add('GET', '/healthz', healthRoute, { access: 'public' })
    .add('GET', '/readyz', createReadyRoute(isReady), { access: 'public' })
    // With metrics.listen, /metrics is served on its own listener only (createMetricsRouteTable).
    .addAll(config.metrics.listen ? [] : [metricsRoute(config, metrics)])
    .add('GET', '/admin/usage', createAdminUsageRoute({ usage: store.usage, now }), { access: 'admin' })
    .add('POST', '/admin/reload', createAdminReloadRoute(dependencies.reload), { access: 'admin' })
    // The operator console (docs/console.md) and the admin JSON routes behind its views (docs/admin-api.md).
    .add('GET', '/admin/session', createAdminSessionRoute({ config: () => config, nodeId: hub.nodeId }), { access: 'admin' })
    .add('GET', '/admin/overview', createAdminOverviewRoute({ usage: store.usage, generations, hub, now }), { access: 'admin' })
    .add('GET', '/admin/requests', createAdminRequestsRoute({ usage: store.usage, requestLog: store.requestLog, textLogged: () => config.log.requests }), { access: 'admin' })
    .add('GET', '/admin/providers', createAdminProvidersRoute({ config: () => config, healthStore: dependencies.healthStore, usage: store.usage, now }), { access: 'admin' })
    .addAll(createAdminLiveRoutes({ hub, generations, registry: dependencies.registry, bodyLimitBytes: config.server.bodyLimitBytes, now }))
    .addAll(createAdminConsoleRoutes());
  router.addAll(createAdminDeploymentsRoutes({ modelRouter, pools: dependencies.pools }));
  router.addAll(createNativeChatRoutes(nativeChatDependencies(dependencies)));
  router.addAll(createConversationRoutes({ conversations: store.conversations }));
  for (const route of createAdminKeysRoutes({ keys, store: store.keys, bodyLimitBytes: config.server.bodyLimitBytes, now })) router.add(route.method, route.pattern, route.handler, { access: 'admin' });
  router.addAll(createHubRoutes({ hub, config, now, logger }));
  router.addAll(createPlaygroundRoutes({ logger }));
  // The OpenAI Responses API: POST /v1/responses, GET and DELETE /v1/responses/:id, POST …/cancel.
  router.addAll(
    createResponsesRoutes({
      config,
      generations,
      registry: dependencies.registry,
      responses: store.responses,
      metrics,
      now,
      onStoreError: (error: unknown, responseId: string) => logger.error({ err: error, responseId }, 'response outcome not stored'),
    }),
  );
  // The Anthropic Messages API: POST /v1/messages and /v1/messages/count_tokens.
  router.addAll(createMessagesRoutes({ config, generations, modelRouter, metrics }));
  return router;
}

/** The routes of the separate metrics listener (metrics.listen): /metrics and nothing else. */
export function createMetricsRouteTable(config: Config, metrics: Metrics): Router {
  return new Router().addAll([metricsRoute(config, metrics)]);
}

/** GET /metrics, open to anyone or to admin credentials only (metrics.auth), wherever it is served. */
function metricsRoute(config: Config, metrics: Metrics): RouteSpec {
  return { method: 'GET', pattern: '/metrics', handler: createMetricsRoute(metrics), options: { access: config.metrics.auth === 'admin' ? 'admin' : 'public' } };
}

/** What the native chat routes and the WebSocket gateway's chats are built from. */
export function nativeChatDependencies(dependencies: RouteTableDependencies): NativeChatDependencies {
  const { config, generations, registry, store, metrics, logger, now, resumeGrants } = dependencies;
  return {
    config,
    generations,
    registry,
    conversations: store.conversations,
    metrics,
    now,
    onStoreError: (error: unknown) => logger.error({ err: error }, 'conversation turn not stored'),
    bindTicket: (ticket: string, principal: Principal, generationId: string) => resumeGrants.grantGeneration(ticket, principal, generationId),
  };
}
