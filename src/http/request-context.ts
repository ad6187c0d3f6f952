// What one request accumulates for its single log line and its metrics.
import type { Usage } from '../contract/stream-event.js';
import type { Principal } from '../contract/principal.js';
import type { GenerationTrace } from '../contract/generation-trace.js';
import type { GenerationSummary } from '../contract/generation-summary.js';
import type { RequestTrace } from '../observability/tracing.js';
import { SluiceError } from '../errors/sluice-error.js';

/** A request's query, to read only: requests without one share a single empty one. */
export type RequestQuery = Pick<URLSearchParams, 'get' | 'getAll' | 'has' | 'entries' | 'keys' | 'values' | 'forEach' | 'size' | 'toString' | typeof Symbol.iterator>;

export interface RequestContext {
  readonly requestId: string;
  readonly startedAt: number;
  /** The parsed query string of the request URL. */
  readonly query: RequestQuery;
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
  /** Present when the request is traced (docs/tracing.md). */
  trace?: RequestTrace;
  /** The generation that answered, once started: its summary goes into the log line and span. */
  generation?: { readonly summary: GenerationSummary | undefined };
  /**
   * What a route keeps open after its handler returned (a hub stream), told when the response
   * closes, just before the log line is written. The request's own close listener calls it, so
   * that thousands of idle streams need no second listener each (decision 0029). Set it only
   * while the response is not destroyed: a response that already closed calls nothing.
   */
  closeListener?: { responseClosed(): void };
}

/**
 * Notes the generation that answers the request. Its summary is copied into the request's log line
 * and span when they are written (at the response's close): the provider, deployment and key id
 * that served it, the attempts, its usage, outcome, error code and time to first token. It is read
 * then, not on `done`: a generation settles before its client's last write, but announces it on
 * `done` only after that write, and the response may close in between.
 */
export function recordGeneration(context: RequestContext, generation: { readonly summary: GenerationSummary | undefined }): void {
  context.generation = generation;
}

/** Copies the summary of the request's generation, if it has settled, into the context. */
export function applyGenerationSummary(context: RequestContext): void {
  const summary = context.generation?.summary;
  if (summary === undefined) return;
  context.provider = summary.provider;
  context.attempts = summary.attempts;
  if (summary.deployment !== undefined) context.deployment = summary.deployment;
  if (summary.providerKeyId !== undefined) context.providerKeyId = summary.providerKeyId;
  context.usage = summary.usage;
  context.outcome = summary.outcome;
  if (summary.timeToFirstTokenMs !== undefined) context.timeToFirstTokenMs = summary.timeToFirstTokenMs;
  if (summary.errorCode !== undefined) context.errorCode = summary.errorCode;
}

/** The start option that makes a generation's upstream attempts child spans of the request's span. */
export function traceOf(context: RequestContext): { trace?: GenerationTrace } {
  return context.trace ? { trace: context.trace.generation } : {};
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
