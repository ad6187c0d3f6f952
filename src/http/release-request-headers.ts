// A long-lived response (a hub stream, hours) keeps its request object, and with it every header
// the client sent: node:http's raw header strings and the header object built from them. Nothing
// reads them once the route has taken what it needs, yet a browser's request carries 0.5 to 2 kB
// of them (cookies, user agent, languages), and the caller's bearer token among them, which then
// sits in memory (and in any heap snapshot) for the connection's whole life (decision 0036).
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** What a released request's `headers` and `rawHeaders` read: nothing, and nothing can be added. */
const releasedHeaders: IncomingHttpHeaders = Object.freeze({});
const releasedRawHeaders = Object.freeze([]) as unknown as string[];

/**
 * Lets go of the request's headers: afterwards `request.headers` is an empty object and
 * `request.rawHeaders` an empty array. Only for a request whose head node:http has read in full
 * and whose route read every header it needs (node:http reads the request's headers only while
 * it starts the response).
 */
export function releaseRequestHeaders(request: IncomingMessage): void {
  // node:http's `headers` is an accessor over a cache: assigning it replaces the cache, so the
  // object built from the raw strings goes too, and is not rebuilt from them.
  request.headers = releasedHeaders;
  request.rawHeaders = releasedRawHeaders;
}
