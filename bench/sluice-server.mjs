// Sluice for the benchmark: the same store, key and createApp as `sluice serve`, plus an IPC hook
// through which the driver forces a garbage collection and reads memory, so both relays are
// measured alike.
import { createApp } from '../dist/app.js';
import { loadConfig } from '../dist/config/load.js';
import { createStore } from '../dist/store/create-store.js';
import { ensureAdminKey } from '../dist/auth/api-keys.js';
import { answerMemoryRequests } from './memory-probe.mjs';

const config = loadConfig({ path: process.env.SLUICE_CONFIG });
const store = await createStore(config.store.url);
const app = createApp({ config, store });
await ensureAdminKey(app.keys, { presetKey: config.auth.adminKey });
const address = await app.listen();
answerMemoryRequests();
process.send?.({ port: address.port });
