// Every HTTP request's way through the gateway: a request id, the route, the caller (with the
// spent-ticket reopen EventSource needs), the access check, the handler, and one log line and one
// metric when the response closes. A failure before the first byte is an error response; after
// it, the socket is dropped, since the status line is long gone.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { SluiceError, toSluiceError } from '../errors/sluice-error.js';
import type { Principal } from '../contract/principal.js';
import type { Authenticator } from '../auth/authenticate.js';
import { createUnredactedLogger, type Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Tracing } from '../observability/tracing.js';
import { applyGenerationSummary, chooseRequestId, type RequestContext, type RequestQuery } from './request-context.js';
import { sendError } from './respond.js';
import type { ResumeGrants } from './resume-grants.js';
import type { Route, Router } from './router.js';

export interface RequestHandlerDependencies {
  readonly router: Router;
  readonly authenticator: Authenticator;
  readonly resumeGrants: ResumeGrants;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  /** Present when tracing is on: every request to a route that is not public gets a span. */
  readonly tracing?: Tracing;
}

export type RequestHandler = (request: IncomingMessage, response: ServerResponse) => Promise<void>;

/** The server's request listener; it never rejects. */
export function createRequestHandler(dependencies: RequestHandlerDependencies): RequestHandler {
  const { logger, now } = dependencies;
  const requestLogger = createUnredactedLogger(logger);

  return async function handle(request, response) {
    const { path, query } = requestTarget(request.url ?? '/');
    const context: RequestContext = { requestId: chooseRequestId(request.headers['x-request-id'], randomUUID), startedAt: now(), route: 'unmatched', query };
    // `on`, not `once`: a response closes once, and once's wrapper would stay with every open
    // stream for as long as it lasts (decision 0029).
    response.on('close', () => {
      context.closeListener?.responseClosed();
      logRequest(dependencies, requestLogger(), context, request, response);
    });
    let answerError: (response: ServerResponse, error: SluiceError) => void = sendError;
    try {
      // Read per request: a config reload swaps the route table (docs/reload.md).
      const match = dependencies.router.match(request.method ?? 'GET', path);
      if (match.kind === 'not-found') throw new SluiceError('not_found', { message: `No route ${request.method ?? ''} ${path}.` });
      if (match.kind === 'method-not-allowed') {
        response.setHeader('allow', match.allowed.join(', '));
        throw new SluiceError('method_not_allowed', { message: `${path} accepts ${match.allowed.join(', ')}.` });
      }
      context.route = match.route.name;
      if (!match.route.writesRequestIdHeader) response.setHeader('x-request-id', context.requestId);
      if (match.route.sendError) answerError = match.route.sendError;
      if (dependencies.tracing && match.route.access !== 'public') {
        context.trace = dependencies.tracing.startRequest({
          method: request.method ?? 'GET',
          route: match.route.name,
          requestId: context.requestId,
          startedAt: context.startedAt,
          traceparent: headerValue(request.headers.traceparent),
          tracestate: headerValue(request.headers.tracestate),
        });
      }
      if (match.route.access !== 'public') context.principal = await authorize(dependencies, context, request, path, match.route);
      await match.route.handler(context, request, response, match.params);
    } catch (thrown) {
      const error = toSluiceError(thrown);
      if (error.code === 'internal_error') logger.error({ err: error.cause, requestId: context.requestId }, 'request failed');
      context.errorCode = error.code;
      if (response.headersSent) response.destroy();
      else {
        response.setHeader('x-request-id', context.requestId);
        answerError(response, error);
      }
    }
  };
}

/** A path of plain segments: `new URL` would give it back unchanged, with an empty query. */
const plainPath = /^(?:\/[A-Za-z0-9_-]+)+$/;

/**
 * The query of every request that has none, shared: a context keeps its query for as long as the
 * request lasts, hours for a hub stream (decision 0029). RequestQuery has no method that changes it.
 */
const emptyQuery: RequestQuery = new URLSearchParams();

/**
 * The request target's path (dot segments resolved, as `new URL` does) and its query. The usual
 * target, a plain path, skips the URL parser: it costs several µs on every request (decision 0027).
 */
function requestTarget(target: string): { path: string; query: RequestQuery } {
  if (plainPath.test(target)) return { path: target, query: emptyQuery };
  const url = new URL(target, 'http://sluice.invalid');
  // A query of its own, not url.searchParams: that one keeps the whole URL alive with it, for as
  // long as the request lasts (hours for a hub stream opened with `?ticket=`; decision 0029).
  return { path: url.pathname, query: url.search === '' ? emptyQuery : new URLSearchParams(url.search) };
}

/** Who is calling, checked against the route's access; records a ticket it came with. */
async function authorize(dependencies: RequestHandlerDependencies, context: RequestContext, request: IncomingMessage, path: string, route: Route): Promise<Principal> {
  const { authenticator, resumeGrants } = dependencies;
  const ticket = route.tickets ? (context.query.get('ticket') ?? undefined) : undefined;
  const principal = await authenticator
    .authenticate({ authorization: authorizationOf(request, route), ticket, actAs: headerValue(request.headers['x-sluice-user']) })
    .catch((error: unknown) => resumeGrants.reopen(error, ticket, route.name, headerValue(request.headers['last-event-id']) ?? context.query.get('lastEventId') ?? undefined));
  if (ticket !== undefined && principal.via === 'ticket') {
    context.ticket = ticket;
    resumeGrants.grantRoute(ticket, principal, route.name);
  }
  if (!allows(route.access, principal)) {
    throw new SluiceError('forbidden', { message: `${path} needs ${route.access === 'admin' ? 'an admin' : 'a service or admin'} credential; this one has role "${principal.role}".` });
  }
  return principal;
}

/** The Authorization header, or the route's API key header (`x-api-key`) as a bearer token. */
function authorizationOf(request: IncomingMessage, route: Route): string | undefined {
  if (request.headers.authorization !== undefined || route.apiKeyHeader === undefined) return request.headers.authorization;
  const key = headerValue(request.headers[route.apiKeyHeader]);
  return key !== undefined && key !== '' ? `Bearer ${key}` : undefined;
}

function allows(access: Route['access'], principal: Principal): boolean {
  if (access === 'caller' || access === 'public') return true;
  if (access === 'service') return principal.role === 'service' || principal.role === 'admin';
  return principal.role === 'admin';
}

/** The request's one log line (through a logger without redaction: no field of it holds a secret) and its metric. */
function logRequest(dependencies: RequestHandlerDependencies, requestLogger: Logger, context: RequestContext, request: IncomingMessage, response: ServerResponse): void {
  const status = response.headersSent ? response.statusCode : 499;
  const durationMs = dependencies.now() - context.startedAt;
  applyGenerationSummary(context);
  context.trace?.end({
    status,
    userId: context.principal?.userId,
    keyId: context.principal?.keyId,
    model: context.model,
    provider: context.provider,
    outcome: context.outcome,
    errorCode: context.errorCode,
    timeToFirstTokenMs: context.timeToFirstTokenMs,
    usage: context.usage,
  });
  dependencies.metrics.requests.inc({ route: context.route, status: status.toString(), model: context.model ?? '', provider: context.provider ?? '' });
  requestLogger.info(
    {
      requestId: context.requestId,
      method: request.method,
      userId: context.principal?.userId,
      keyId: context.principal?.keyId,
      route: context.route,
      status,
      model: context.model,
      provider: context.provider,
      deployment: context.deployment,
      providerKeyId: context.providerKeyId,
      attempts: context.attempts,
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

/** The first value of a header that may repeat. */
export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

