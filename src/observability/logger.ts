// The structured logger (pino). Secrets never reach it: request headers are not logged, and
// provider errors carry messages already scrubbed of keys.
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export function createLogger(level: LogLevel, destination: DestinationStream = batchedStdout()): Logger {
  return pino(
    {
      level,
      base: { service: 'sluice' },
      redact: { paths: ['*.authorization', '*.apiKey', '*.headers'], censor: '[redacted]' },
    },
    destination,
  );
}

/** Bytes of log lines gathered before one write to standard output. */
const logBatchBytes = 4096;
/** The longest a gathered line waits for its write, in ms. */
const logFlushMs = 100;

let stdout: DestinationStream | undefined;

/**
 * Standard output, written in batches and shared by every logger of the process: lines gather until
 * 4 kB or 100 ms, whichever comes first, then leave in one asynchronous write (sonic-boom, through
 * libuv's thread pool). A write per line woke a pool thread and then the event loop for every
 * request's line, right after its answer's last bytes (decision 0038). pino writes what is gathered
 * when the process exits (`exit` and `beforeExit`, which a crash and `process.exit` both reach);
 * a process killed with SIGKILL loses at most the last 100 ms of lines.
 */
function batchedStdout(): DestinationStream {
  stdout ??= pino.destination({ dest: 1, sync: false, minLength: logBatchBytes, periodicFlush: logFlushMs });
  return stdout;
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
