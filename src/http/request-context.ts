// What one request accumulates for its single log line and its metrics.
import type { Usage } from '../contract/stream-event.js';
import type { Principal } from '../contract/principal.js';
import type { GenerationTrace } from '../contract/generation-trace.js';
import type { GenerationSummary } from '../contract/generation-summary.js';
import type { RequestTrace } from '../observability/tracing.js';
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
  stream?: boolean;
  usage?: Usage;
  timeToFirstTokenMs?: number;
  outcome?: string;
  errorCode?: string;
  /** Present when the request is traced (docs/tracing.md). */
  trace?: RequestTrace;
}

/**
 * Copies what a generation's summary says into the request's log line and span once it ended:
 * the provider that served it, its usage, outcome, error code and time to first token.
 */
export function recordGeneration(context: RequestContext, generation: { readonly done: Promise<GenerationSummary> }): void {
  void generation.done.then((summary) => {
    context.provider = summary.provider;
    context.usage = summary.usage;
    context.outcome = summary.outcome;
    if (summary.timeToFirstTokenMs !== undefined) context.timeToFirstTokenMs = summary.timeToFirstTokenMs;
    if (summary.errorCode !== undefined) context.errorCode = summary.errorCode;
  });
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
