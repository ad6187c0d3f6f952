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
