// The structured logger (pino). Secrets never reach it: request headers are not logged, and
// provider errors carry messages already scrubbed of keys.
import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from '../config/config.js';

export type { Logger };

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
