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
  /** Attempts that failed before this one answered, in order (deployment: `provider/model`). */
  fallbacks: { provider: string; deployment: string; code: ErrorCode }[];
  /** Upstream attempts made, the last one included; 0 when none could be made (pool_unavailable). */
  attempts: number;
  /** The pool deployment of the last attempt (`provider/model`). */
  deployment?: string;
  /** The provider key of the last attempt (`provider#N`), never the key itself. */
  providerKeyId?: string;
}
