// Sluice for the benchmark: the same store, key, cluster and createApp as `sluice serve`, plus an
// IPC hook through which the driver forces a garbage collection and reads memory, so both relays
// are measured alike. With `cluster:` in its config it opens the cluster as serve does; on SIGTERM
// it leaves the way serve does (drain, close the cluster, close the store), so a node removes its
// presence from Redis before the driver deletes the run's keys.
import { createApp } from '../dist/app.js';
import { startTracing } from '../dist/observability/start-tracing.js';
import { loadConfig } from '../dist/config/load.js';
import { createStore } from '../dist/store/create-store.js';
import { ensureAdminKey } from '../dist/auth/api-keys.js';
import { openCluster } from '../dist/cluster/cluster.js';
import { createLogger } from '../dist/observability/logger.js';
import { answerMemoryRequests } from './memory-probe.mjs';

const config = loadConfig({ path: process.env.SLUICE_CONFIG });
const store = await createStore(config.store.url);
const logger = createLogger(config.log.level);
const cluster = config.cluster ? await openCluster(config.cluster, config, logger) : undefined;
const tracing = await startTracing(config.tracing);
const app = createApp({ config, store, logger, ...cluster?.dependencies, ...(tracing ? { tracing } : {}) });
await ensureAdminKey(app.keys, { presetKey: config.auth.adminKey });
const address = await app.listen();
answerMemoryRequests();
process.once('SIGTERM', () => {
  app
    .shutdown()
    .then(() => cluster?.close())
    .then(() => store.close())
    .finally(() => process.exit(0));
});
process.send?.({ port: address.port });
