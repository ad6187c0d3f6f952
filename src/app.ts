// createApp(deps): wiring only. It builds the providers, the router, the generation service and
// the HTTP server, and does no I/O until listen() is called.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
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
import { createMetricsRoute, createModelsRoute, createReadyRoute, healthRoute } from './http/routes/operations.js';

export interface AppDependencies {
  config: Config;
  logger?: Logger;
  metrics?: Metrics;
  now?: () => number;
  /** Generation ids: short, URL- and header-safe ASCII. */
  createId?: () => string;
  /** Replaces every provider's connection pool (tests). */
  dispatcher?: Dispatcher;
}

export interface App {
  readonly config: Config;
  readonly server: Server;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly generations: GenerationService;
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
  const generations = createGenerationService({ router: modelRouter, metrics, now, createId });

  const router = new Router()
    .add('POST', '/v1/chat/completions', createChatCompletionsRoute({ config, generations, metrics, now }))
    .add('GET', '/v1/models', createModelsRoute(modelRouter))
    .add('GET', '/healthz', healthRoute)
    .add('GET', '/readyz', createReadyRoute(() => (generations.accepting ? { ready: true } : { ready: false, reason: 'shutting down' })))
    .add('GET', '/metrics', createMetricsRoute(metrics));

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const context: RequestContext = { requestId: chooseRequestId(request.headers['x-request-id'], randomUUID), startedAt: now(), route: 'unmatched' };
    response.setHeader('x-request-id', context.requestId);
    response.once('close', () => logRequest(context, request, response));
    try {
      const path = (request.url ?? '/').split('?', 1)[0] ?? '/';
      const match = router.match(request.method ?? 'GET', path);
      if (match.kind === 'not-found') throw new SluiceError('not_found', { message: `No route ${request.method ?? ''} ${path}.` });
      if (match.kind === 'method-not-allowed') {
        response.setHeader('allow', match.allowed.join(', '));
        throw new SluiceError('method_not_allowed', { message: `${path} accepts ${match.allowed.join(', ')}.` });
      }
      context.route = match.route.name;
      await match.route.handler(context, request, response, match.params);
    } catch (thrown) {
      const error = toSluiceError(thrown);
      if (error.code === 'internal_error') logger.error({ err: error.cause, requestId: context.requestId }, 'request failed');
      context.errorCode = error.code;
      if (!response.headersSent) sendError(response, error);
      else response.destroy();
    }
  }

  function logRequest(context: RequestContext, request: IncomingMessage, response: ServerResponse): void {
    const status = response.headersSent ? response.statusCode : 499;
    const durationMs = now() - context.startedAt;
    metrics.requests.inc({ route: context.route, status: status.toString(), model: context.model ?? '', provider: context.provider ?? '' });
    logger.info(
      {
        requestId: context.requestId,
        method: request.method,
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

  return {
    config,
    server,
    logger,
    metrics,
    generations,
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
      // Let the last events reach the sockets, then drop what is left.
      await new Promise((resolve) => setTimeout(resolve, 50));
      server.closeAllConnections();
      await closed;
      await Promise.all([...providers.values()].map((provider) => provider.close()));
    },
  };
}
