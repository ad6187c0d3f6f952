// `sluice serve`: load config, create the app, listen, and shut down gracefully on SIGTERM/SIGINT.
import { ConfigError, loadConfig } from '../config/load.js';
import { createApp } from '../app.js';

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
  const app = createApp({ config });
  const address = await app.listen();
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port.toString()}`;
  app.logger.info({ url, providers: Object.keys(config.providers), defaultModel: config.defaultModel }, `sluice listening on ${url}`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      app.logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    app.logger.info({ signal, drainTimeoutMs: config.server.drainTimeoutMs }, 'shutting down');
    app.shutdown().then(
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
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
