// What one request accumulates for its single log line and its metrics.
import type { Usage } from '../contract/stream-event.js';
import type { Principal } from '../contract/principal.js';
import { SluiceError } from '../errors/sluice-error.js';

export interface RequestContext {
  readonly requestId: string;
  readonly startedAt: number;
  /** The parsed query string of the request URL. */
  readonly query: URLSearchParams;
  route: string;
  /** Who is calling; set before any route that is not public runs. */
  principal?: Principal;
  /** The `?ticket=` the principal was redeemed from, on routes that take tickets. */
  ticket?: string;
  model?: string;
  provider?: string;
  /** The pool deployment that served (`provider/model`), its key id (`provider#N`) and the attempts made. */
  deployment?: string;
  providerKeyId?: string;
  attempts?: number;
  stream?: boolean;
  usage?: Usage;
  timeToFirstTokenMs?: number;
  outcome?: string;
  errorCode?: string;
}

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** Accepts a caller's `x-request-id` when it is short and safe, otherwise makes one. */
export function chooseRequestId(header: string | string[] | undefined, generate: () => string): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && requestIdPattern.test(value) ? value : generate();
}

/** The caller of a protected route (the app authenticated it before the handler ran). */
export function callerOf(context: RequestContext): Principal {
  if (!context.principal) throw new SluiceError('internal_error', { message: 'A protected route ran without a principal.' });
  return context.principal;
}
