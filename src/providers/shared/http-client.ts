// One keep-alive connection pool per provider (undici), optionally through an HTTP proxy, and the
// mapping of transport failures to Sluice error codes. A generation's upstream call goes through
// the HTTP shell (http-upstream.ts, a dispatch handler); a small request read whole (embeddings,
// a token) through `sendUpstream`. Either way adapters never see undici's error classes.
import { Agent, EnvHttpProxyAgent, ProxyAgent, type Dispatcher } from 'undici';
import { SluiceError } from '../../errors/sluice-error.js';
import type { OutboundProxy } from '../../contract/provider.js';

export interface PoolOptions {
  connectTimeoutMs: number;
  maxConnections: number;
  /** Per-provider proxy URL; wins over the environment's. */
  proxy?: string | undefined;
  outboundProxy: OutboundProxy;
}

/**
 * Creates the dispatcher a provider keeps for its lifetime. Body and header timeouts are off here:
 * the relay enforces first-byte, idle and total timeouts itself, with their own error codes.
 */
export function createPool(options: PoolOptions): Dispatcher {
  const agentOptions = {
    connect: { timeout: options.connectTimeoutMs },
    connections: options.maxConnections,
    keepAliveTimeout: 30_000,
    headersTimeout: 0,
    bodyTimeout: 0,
  };
  if (options.proxy) return new ProxyAgent({ ...agentOptions, uri: options.proxy });
  const { httpProxy, httpsProxy, noProxy } = options.outboundProxy;
  if (httpProxy || httpsProxy) {
    return new EnvHttpProxyAgent({
      ...agentOptions,
      ...(httpProxy ? { httpProxy } : {}),
      ...(httpsProxy ? { httpsProxy } : {}),
      ...(noProxy ? { noProxy } : {}),
    });
  }
  return new Agent(agentOptions);
}

export interface ProviderPool {
  dispatcher: Dispatcher;
  /** Closes the pool, unless it was injected (tests), in which case its owner closes it. */
  close: () => Promise<void>;
}

/** The dispatcher an HTTP provider uses: the injected one, or a pool of its own from its config. */
export function providerPool(
  config: { timeouts: { connectMs: number }; maxConnections: number; proxy?: string | undefined },
  outboundProxy: OutboundProxy,
  injected: Dispatcher | undefined,
): ProviderPool {
  if (injected) return { dispatcher: injected, close: async () => {} };
  const dispatcher = createPool({ connectTimeoutMs: config.timeouts.connectMs, maxConnections: config.maxConnections, proxy: config.proxy, outboundProxy });
  return { dispatcher, close: () => dispatcher.close() };
}

export interface UpstreamRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal;
  dispatcher: Dispatcher;
  provider: string;
}

export type UpstreamResponse = Dispatcher.ResponseData;

/** Origin and path of the URLs requests went to, so that a URL is parsed once, not per request. */
const parsedUrls = new Map<string, { origin: string; path: string }>();
const maxParsedUrls = 1024;

export function originAndPath(url: string): { origin: string; path: string } {
  let parsed = parsedUrls.get(url);
  if (parsed === undefined) {
    const { origin, pathname, search } = new URL(url);
    parsed = { origin, path: pathname + search };
    // Providers whose URL changes per request (a signed query) must not grow the map without end.
    if (parsedUrls.size >= maxParsedUrls) parsedUrls.clear();
    parsedUrls.set(url, parsed);
  }
  return parsed;
}

/**
 * Sends one request. Connection failures become SluiceErrors; an abort rethrows the signal's reason.
 * It goes to the dispatcher's own `request` with origin and path: undici's top-level `request(url)`
 * parses the URL and copies the options on every call (decision 0027).
 */
export async function sendUpstream(upstream: UpstreamRequest): Promise<UpstreamResponse> {
  try {
    const { origin, path } = originAndPath(upstream.url);
    return await upstream.dispatcher.request({
      origin,
      path,
      method: 'POST',
      headers: upstream.headers,
      body: upstream.body,
      signal: upstream.signal,
    });
  } catch (error) {
    throw transportError(error, upstream.signal, upstream.provider);
  }
}

/** Maps an error thrown by undici (while connecting or reading the body) to a SluiceError. */
export function transportError(error: unknown, cancellation: { readonly aborted: boolean; readonly reason: unknown }, provider: string): unknown {
  if (cancellation.aborted) return cancellation.reason;
  if (error instanceof SluiceError) return error;
  const code = (error as { code?: string } | null)?.code ?? '';
  const detail = error instanceof Error ? error.message : String(error);
  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new SluiceError('upstream_connect_timeout', { provider, cause: error, message: `Connecting to provider "${provider}" timed out.` });
  }
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT', 'ECONNRESET_BEFORE_RESPONSE'].includes(code) || (error instanceof Error && error.name === 'ConnectTimeoutError')) {
    return new SluiceError('upstream_connect_failed', { provider, cause: error, message: `Could not connect to provider "${provider}" (${code || detail}).` });
  }
  if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED') {
    return new SluiceError('upstream_stream_interrupted', { provider, cause: error, message: `The connection to provider "${provider}" was closed before the answer was complete.` });
  }
  return new SluiceError('upstream_error', { provider, cause: error, message: `Request to provider "${provider}" failed (${code || detail}).` });
}

/** Reads at most `maxBytes` of a (typically error) body as text and discards the rest. */
export async function readBodyText(body: AsyncIterable<Uint8Array>, maxBytes = 64 * 1024): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  for await (const chunk of body) {
    if (bytes < maxBytes) text += decoder.decode(chunk.subarray(0, maxBytes - bytes), { stream: true });
    bytes += chunk.byteLength;
  }
  return text + decoder.decode();
}

/** Reads a whole 200 response as JSON; a body that is not JSON is `upstream_protocol_error`. */
export async function readJsonResponse(body: AsyncIterable<Uint8Array>, maxBytes: number, provider: string): Promise<{ json: unknown; text: string }> {
  const text = await readBodyText(body, maxBytes);
  try {
    return { json: JSON.parse(text), text };
  } catch {
    throw new SluiceError('upstream_protocol_error', { provider, message: `Provider "${provider}" answered 200 with a body that is not JSON.` });
  }
}

/** Parses `Retry-After` (seconds or an HTTP date) into whole seconds. */
export function retryAfterSeconds(header: string | string[] | undefined, now: number): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.ceil(Number(value));
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}
