// `sluice serve`: load config, open the store, create the app, listen, reload the config on SIGHUP,
// and shut down gracefully on SIGTERM/SIGINT. On the first start with an empty store it installs an admin key and prints it once,
// as an `export SLUICE_KEY=…` line; of several nodes starting together only the one that installed it.
import type { AddressInfo } from 'node:net';
import { ConfigError, loadConfig } from '../config/load.js';
import { createApp } from '../app.js';
import { createStore } from '../store/create-store.js';
import { ensureAdminKey } from '../auth/api-keys.js';
import { openCluster } from '../cluster/cluster.js';
import { createLogger } from '../observability/logger.js';
import { startTracing } from '../observability/start-tracing.js';
import { describeListenFailure } from './listen-failure.js';

export async function serve(configPath: string | undefined): Promise<void> {
  let config;
  try {
    config = loadConfig({ path: configPath });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw error;
  }
  const store = await createStore(config.store.url);
  const logger = createLogger(config.log.level);
  const cluster = config.cluster ? await openCluster(config.cluster, config, logger) : undefined;
  const tracing = await startTracing(config.tracing);
  const app = createApp({ config, store, logger, readConfig: () => loadConfig({ path: configPath }), ...cluster?.dependencies, ...(tracing ? { tracing } : {}) });
  if (config.auth.mode === 'none') app.logger.warn({ host: config.server.host }, 'auth.mode is none: every caller is anonymous and unauthenticated (allowed only on a loopback address)');
  if (config.auth.mode === 'keys' || config.auth.mode === 'both') {
    const installed = await ensureAdminKey(app.keys, config.auth.adminKey !== undefined ? { presetKey: config.auth.adminKey } : {});
    if (installed) {
      // Printed once, on stderr and not in the JSON log, so log shipping never carries it.
      process.stderr.write(
        config.auth.adminKey !== undefined
          ? 'sluice: the store had no keys; installed SLUICE_ADMIN_KEY as the admin key.\n'
          : // The line is a shell command to paste: the README's examples and `sluice chat` read SLUICE_KEY.
            `\nsluice: the store had no keys, so this admin key was created. It is shown only now:\n\n  export SLUICE_KEY=${installed.created}\n\nRun that line in your shell (sluice chat and the README's examples read SLUICE_KEY), or send the key as "Authorization: Bearer <key>". Create keys for users with "sluice keys create" or POST /admin/keys.\n\n`,
      );
    }
  }
  let address: AddressInfo;
  try {
    address = await app.listen();
  } catch (error) {
    const failure = describeListenFailure(error, config);
    if (failure === undefined) throw error;
    // One line an operator can act on (the port, the setting), not a stack trace.
    process.stderr.write(`sluice: ${failure}\n`);
    await app.shutdown(0);
    await cluster?.close();
    await store.close();
    process.exitCode = 1;
    return;
  }
  const url = urlOf(address);
  const metricsAddress = app.metricsServer?.address();
  const metrics = metricsAddress && typeof metricsAddress === 'object' ? `${urlOf(metricsAddress)}/metrics` : undefined;
  app.logger.info({ url, metrics, providers: Object.keys(config.providers), defaultModel: config.defaultModel, auth: config.auth.mode, store: store.kind, node: config.cluster?.nodeId }, `sluice listening on ${url}`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      app.logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    app.logger.info({ signal, drainTimeoutMs: config.server.drainTimeoutMs }, 'shutting down');
    app
      .shutdown()
      .then(() => cluster?.close())
      .then(() => store.close())
      .then(
        () => {
          app.logger.info('stopped');
          process.exitCode = 0;
        },
        (error: unknown) => {
          app.logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  // SIGHUP re-reads the config file, as POST /admin/reload does; a config with problems is
  // logged and refused, and the running one stays (docs/reload.md).
  process.on('SIGHUP', () => {
    try {
      app.reloadFromSource();
    } catch (error) {
      if (!(error instanceof ConfigError)) app.logger.error({ err: error }, 'configuration reload failed');
    }
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function urlOf(address: AddressInfo): string {
  return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port.toString()}`;
}
