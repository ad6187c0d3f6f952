// What one request accumulates for its single log line and its metrics.
import type { Usage } from '../relay/stream-event.js';

export interface RequestContext {
  readonly requestId: string;
  readonly startedAt: number;
  route: string;
  model?: string;
  provider?: string;
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
