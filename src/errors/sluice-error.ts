// The one error class of Sluice. Anything thrown inside the gateway is either a SluiceError or is
// turned into one by `toSluiceError` before it reaches a client.
import { errorTable, type ErrorCode } from './table.js';

export interface SluiceErrorOptions {
  /** Replaces the table's default message. Must never contain a secret. */
  message?: string;
  /** The request field the error is about (OpenAI `param`). */
  param?: string;
  /** The HTTP status the upstream answered with, when the error came from a provider. */
  upstreamStatus?: number;
  /** Seconds the caller should wait before retrying (sent as `Retry-After`). */
  retryAfterSeconds?: number;
  /** The provider id, for logs and metrics. */
  provider?: string;
  cause?: unknown;
}

export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly param: string | undefined;
  readonly upstreamStatus: number | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly provider: string | undefined;

  constructor(code: ErrorCode, options: SluiceErrorOptions = {}) {
    super(options.message ?? errorTable[code].message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.param = options.param;
    this.upstreamStatus = options.upstreamStatus;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.provider = options.provider;
  }

  get status(): number {
    return errorTable[this.code].status;
  }

  get retryable(): boolean {
    return errorTable[this.code].retryable;
  }
}

/** Turns any thrown value into a SluiceError; unknown failures become `internal_error`. */
export function toSluiceError(error: unknown): SluiceError {
  if (error instanceof SluiceError) return error;
  return new SluiceError('internal_error', { cause: error });
}
