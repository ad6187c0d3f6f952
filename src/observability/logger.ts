// The structured logger (pino). Secrets never reach it: request headers are not logged, and
// provider errors carry messages already scrubbed of keys.
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'sluice' },
      redact: { paths: ['*.authorization', '*.apiKey', '*.headers'], censor: '[redacted]' },
    },
    destination,
  );
}

/**
 * A child of `logger` that writes the same lines without the redaction pass, for lines whose
 * fields are known to hold none of the redacted keys (the request line: scalars and a `Usage`).
 * With a wildcard path, pino runs the redaction on every top-level value of every line, a quarter
 * of a request line's cost (docs/decisions/0025-per-request-path.md). The returned function gives
 * the child at `logger`'s current level: a config reload sets the parent's (docs/reload.md), and a
 * child keeps its own.
 */
export function createUnredactedLogger(logger: Logger): () => Logger {
  const child = logger.child({}, { redact: [] });
  return () => {
    if (child.level !== logger.level) child.level = logger.level;
    return child;
  };
}
