// What one generation came to: the record that metrics, logs and usage rows are made from.
import type { ErrorCode } from '../errors/table.js';
import type { Usage } from './stream-event.js';

export type Outcome = 'completed' | 'cancelled' | 'error';

export interface GenerationSummary {
  id: string;
  provider: string;
  upstreamModel: string;
  outcome: Outcome;
  errorCode?: ErrorCode;
  usage: Usage;
  /** From the start of the generation to its first content event; absent if there was none. */
  timeToFirstTokenMs?: number;
  durationMs: number;
  /** Providers that failed before this one answered, in order. */
  fallbacks: { provider: string; code: ErrorCode }[];
}
