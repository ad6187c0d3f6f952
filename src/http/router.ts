// A small method + path router. Patterns are literal segments and `:name` parameters.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestContext } from './request-context.js';
import type { SluiceError } from '../errors/sluice-error.js';

export type RouteHandler = (context: RequestContext, request: IncomingMessage, response: ServerResponse, params: Readonly<Record<string, string>>) => Promise<void> | void;

/**
 * Who may call a route: `public` needs no credential; `caller` any authenticated principal;
 * `service` a service or admin credential; `admin` an admin credential.
 */
export type Access = 'public' | 'caller' | 'service' | 'admin';

export interface RouteOptions {
  /** Labels metrics and logs; defaults to the pattern. */
  name?: string;
  /** Defaults to `caller`: a route is protected unless it says otherwise. */
  access?: Access;
  /**
   * Accepts `?ticket=` in place of an Authorization header, for EventSource and WebSocket, which
   * cannot send headers. Only such routes do, so a ticket never unlocks anything else.
   */
  tickets?: boolean;
  /**
   * A header that carries the API key when there is no Authorization header (the Messages API's
   * `x-api-key`, which Anthropic's SDKs send); its value is taken as a bearer token.
   */
  apiKeyHeader?: string;
  /**
   * Writes an error answered before the first byte, the failures of authentication and access
   * included, in the route's own API's shape (Anthropic's for /v1/messages); OpenAI's by default.
   */
  sendError?: (response: ServerResponse, error: SluiceError) => void;
  /**
   * Every response head the handler writes carries `x-request-id` already (in its one writeHead
   * call), so the request handler does not set it ahead. A header set ahead is kept by node:http
   * in a map of its own for the response's whole life, which an idle hub stream pays for hours
   * (decision 0029). Errors the request handler answers get it all the same.
   */
  writesRequestIdHeader?: boolean;
}

/** A route as a module hands it to the app, which registers a list of them in one loop. */
export interface RouteSpec {
  readonly method: string;
  readonly pattern: string;
  readonly handler: RouteHandler;
  readonly options?: RouteOptions;
}

/** A registered route, as a match returns it. */
export interface Route {
  method: string;
  segments: string[];
  name: string;
  access: Access;
  tickets: boolean;
  apiKeyHeader?: string;
  sendError?: (response: ServerResponse, error: SluiceError) => void;
  writesRequestIdHeader: boolean;
  handler: RouteHandler;
}

export type RouteMatch =
  | { kind: 'found'; route: Route; params: Readonly<Record<string, string>> }
  | { kind: 'method-not-allowed'; allowed: string[] }
  | { kind: 'not-found' };

/** At most this many paths are remembered by `match`; past it, new ones are looked up each time. */
const maxRemembered = 256;

/** The params of a route without any: one frozen object for every match of such a route. */
const noParams: Readonly<Record<string, string>> = Object.freeze({});

export class Router {
  readonly #routes: Route[] = [];
  /**
   * Matches of routes without parameters, by `method path` exactly as asked: the next request to
   * the same path (every request to /v1/chat/completions) is one Map lookup instead of a walk over
   * every route that builds a params object per pattern (decision 0046). Bounded, since paths come
   * from clients; a route added later clears it.
   */
  readonly #remembered = new Map<string, RouteMatch>();

  add(method: string, pattern: string, handler: RouteHandler, options: RouteOptions = {}): this {
    this.#remembered.clear();
    this.#routes.push({
      method,
      segments: pattern.split('/').filter(Boolean),
      name: options.name ?? pattern,
      access: options.access ?? 'caller',
      tickets: options.tickets ?? false,
      ...(options.apiKeyHeader !== undefined ? { apiKeyHeader: options.apiKeyHeader.toLowerCase() } : {}),
      ...(options.sendError ? { sendError: options.sendError } : {}),
      writesRequestIdHeader: options.writesRequestIdHeader ?? false,
      handler,
    });
    return this;
  }

  addAll(routes: Iterable<RouteSpec>): this {
    for (const route of routes) this.add(route.method, route.pattern, route.handler, route.options);
    return this;
  }

  match(method: string, path: string): RouteMatch {
    const asked = `${method} ${path}`;
    const remembered = this.#remembered.get(asked);
    if (remembered !== undefined) return remembered;
    const parts = path.split('/').filter(Boolean);
    const allowed: string[] = [];
    for (const route of this.#routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) {
        if (route.segments.some((segment) => segment.startsWith(':'))) return { kind: 'found', route, params };
        const found: RouteMatch = { kind: 'found', route, params: noParams };
        if (this.#remembered.size < maxRemembered) this.#remembered.set(asked, found);
        return found;
      }
      allowed.push(route.method);
    }
    return allowed.length > 0 ? { kind: 'method-not-allowed', allowed } : { kind: 'not-found' };
  }
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (const [index, segment] of pattern.entries()) {
    const part = parts[index] ?? '';
    if (segment.startsWith(':')) {
      try {
        params[segment.slice(1)] = decodeURIComponent(part);
      } catch {
        return undefined;
      }
    } else if (segment !== part) return undefined;
  }
  return params;
}
