// What `sluice serve` says when it cannot listen: one line naming the address and the setting that
// changes it, instead of a stack trace. The main listener and the metrics one (metrics.listen) are
// told apart by port, which load.ts keeps distinct.
import type { Config } from '../config/config.js';

interface ListenError {
  code: string;
  port?: number;
  address?: string;
}

/** The line for a failed listen() (address in use, not on this machine, privileged), or undefined for any other error. */
export function describeListenFailure(error: unknown, config: { readonly server: Pick<Config['server'], 'host' | 'port'>; readonly metrics: Config['metrics'] }): string | undefined {
  if (!isListenError(error)) return undefined;
  const metrics = config.metrics.listen;
  const port = error.port ?? config.server.port;
  const isMetrics = metrics !== undefined && port === metrics.port && (metrics.port !== config.server.port || error.address === metrics.host);
  const setting = isMetrics ? 'set metrics.listen in the config' : undefined;
  switch (error.code) {
    case 'EADDRINUSE':
      return `port ${port.toString()} is in use; ${setting ?? 'set server.port in the config or SLUICE_PORT'}`;
    case 'EADDRNOTAVAIL':
      return `${error.address ?? (isMetrics ? metrics.host : config.server.host)} is not an address of this machine; ${setting ?? 'set server.host in the config or SLUICE_HOST'}`;
    case 'EACCES':
      return `port ${port.toString()} needs privileges this process does not have; ${setting ?? 'set server.port in the config or SLUICE_PORT'} to a port above 1023`;
    default:
      return undefined;
  }
}

function isListenError(error: unknown): error is ListenError {
  return error instanceof Error && 'syscall' in error && error.syscall === 'listen' && 'code' in error && typeof error.code === 'string';
}
