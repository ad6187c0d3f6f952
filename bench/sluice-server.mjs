// Sluice for the benchmark: the same createApp as `sluice serve`, plus an IPC hook through which
// the driver forces a garbage collection and reads memory, so both relays are measured alike.
import { createApp } from '../dist/app.js';
import { loadConfig } from '../dist/config/load.js';
import { answerMemoryRequests } from './memory-probe.mjs';

const app = createApp({ config: loadConfig({ path: process.env.SLUICE_CONFIG }) });
const address = await app.listen();
answerMemoryRequests();
process.send?.({ port: address.port });
