// The outbound proxy for a provider that speaks WebSocket (Spark): the same choice the HTTP
// providers make (their own `proxy:` first, else HTTPS_PROXY for wss:// and HTTP_PROXY for ws://,
// minus NO_PROXY), reached with an HTTP CONNECT tunnel, which is how forward proxies carry
// WebSocket traffic. https-proxy-agent opens the tunnel and, for wss://, the TLS session inside it.
import type { Agent } from 'node:http';
import { HttpsProxyAgent } from 'https-proxy-agent';
import type { OutboundProxy } from '../../contract/provider.js';

/**
 * The proxy URL for `target`, or undefined to connect directly. `providerProxy` (the provider's
 * own `proxy:` setting) wins and ignores NO_PROXY, as it does for HTTP providers.
 */
export function proxyFor(target: URL, providerProxy: string | undefined, outbound: OutboundProxy): string | undefined {
  if (providerProxy) return providerProxy;
  const secure = target.protocol === 'wss:' || target.protocol === 'https:';
  const proxy = secure ? (outbound.httpsProxy ?? outbound.httpProxy) : outbound.httpProxy;
  if (!proxy || bypassed(target, outbound.noProxy)) return undefined;
  return proxy;
}

/**
 * NO_PROXY as curl and undici read it: comma or space separated entries, `*` for everything, a
 * host name that matches itself and its subdomains (a leading dot or `*.` is the same), an
 * optional `:port` that must then match too. IP ranges (CIDR) are not supported, as in undici.
 */
export function bypassed(target: URL, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = target.port || (target.protocol === 'wss:' || target.protocol === 'https:' ? '443' : '80');
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    // `[::1]:8080`, a bare IPv6 address (several colons, no port), or `name[:port]`.
    const match = /^\[(.+)\](?::(\d+))?$/.exec(entry) ?? (entry.split(':').length > 2 ? [entry, entry] : /^(.*?)(?::(\d+))?$/.exec(entry));
    const name = (match?.[1] ?? entry).replace(/^\*?\./, '');
    const entryPort = match?.[2];
    if (entryPort !== undefined && entryPort !== port) continue;
    if (host === name || host.endsWith(`.${name}`)) return true;
  }
  return false;
}

/** The agent a WebSocket to `target` goes through, or undefined to connect directly. */
export function websocketProxyAgent(target: URL, providerProxy: string | undefined, outbound: OutboundProxy): Agent | undefined {
  const proxy = proxyFor(target, providerProxy, outbound);
  return proxy === undefined ? undefined : new HttpsProxyAgent(proxy);
}
