// The gateway's graceful stop, in the order that loses the least: refuse new work, let running
// generations finish for a while, end the rest with `shutting_down`, tell hub clients to reconnect
// elsewhere, close the sockets, then flush usage and close the provider pools.
import type { Server } from 'node:http';
import { SluiceError } from '../errors/sluice-error.js';
import type { ProviderAdapter } from '../contract/provider.js';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../observability/logger.js';
import type { GenerationService } from '../relay/generation-service.js';
import type { WebSocketGateway } from './ws/websocket-gateway.js';

export interface ShutdownParts {
  readonly server: Server;
  readonly generations: GenerationService;
  readonly hub: Hub;
  readonly websockets: WebSocketGateway;
  readonly providers: ReadonlyMap<string, Pick<ProviderAdapter, 'close'>>;
  readonly logger: Logger;
}

/** How long the last events and close frames get to reach their sockets before these are dropped (ms). */
const lastWordsMs = 50;

/**
 * Refuses new requests, lets running generations finish for up to `drainTimeoutMs`, ends the rest
 * with a `shutting_down` error event, then closes every connection and what the app opened.
 */
export async function shutDownGracefully(parts: ShutdownParts, drainTimeoutMs: number): Promise<void> {
  const { server, generations, hub, logger } = parts;
  generations.stopAccepting();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  await drainGenerations(generations, logger, drainTimeoutMs);
  // Hub clients are told to reconnect (to another node) before their sockets go.
  await hub.closeLocal().catch((error: unknown) => logger.warn({ err: error }, 'hub: closing connections at shutdown failed'));
  parts.websockets.closeAll();
  // Let the last events and close frames reach the sockets, then drop what is left.
  await new Promise((resolve) => setTimeout(resolve, lastWordsMs));
  server.closeAllConnections();
  await closed;
  await generations.flushUsage();
  await Promise.all([...parts.providers.values()].map((provider) => provider.close()));
}

/** Waits up to `drainTimeoutMs` for running generations, then cancels those still running. */
async function drainGenerations(generations: GenerationService, logger: Logger, drainTimeoutMs: number): Promise<void> {
  const running = [...generations.active];
  if (running.length === 0) return;
  logger.info({ running: running.length, drainTimeoutMs }, 'draining running generations');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, drainTimeoutMs)));
  await Promise.race([Promise.all(running.map((generation) => generation.done)), timedOut]);
  clearTimeout(timer);
  for (const generation of generations.active) generation.cancel(new SluiceError('shutting_down', { message: 'The gateway is shutting down; the answer was cut short.' }));
  await Promise.all([...running].map((generation) => generation.done));
}
