// Starts a real Sluice (createApp + listen on 127.0.0.1:0) from a config object, with its log lines
// captured, for end-to-end tests.
import { Writable } from 'node:stream';
import { createApp, type App } from '../../src/app.js';
import { resolveConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { createStore } from '../../src/store/create-store.js';
import { startTracing } from '../../src/observability/start-tracing.js';
import type { AppDependencies } from '../../src/app.js';

export interface TestGateway {
  app: App;
  /** e.g. http://127.0.0.1:40123 */
  url: string;
  /** Every log line written so far, as text. */
  logs: string[];
  close(): Promise<void>;
}

/**
 * `config` is the YAML document as an object; server.port defaults to 0 and host to 127.0.0.1.
 * Unless the config says otherwise, auth is off (mode none, on loopback) and the store is an
 * in-memory SQLite database, so tests about streaming need no keys.
 */
export async function startGateway(config: Record<string, unknown>, env: Record<string, string> = {}, extra: Partial<AppDependencies> = {}): Promise<TestGateway> {
  const server = { port: 0, host: '127.0.0.1', ...(config['server'] as Record<string, unknown> | undefined) };
  const resolved = resolveConfig({ auth: { mode: 'none' }, store: { url: 'sqlite::memory:' }, ...config, server }, env, 'test config');
  const store = extra.store ?? (await createStore(resolved.store.url));
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(chunk.toString('utf8'));
      callback();
    },
  });
  const tracing = extra.tracing ?? (await startTracing(resolved.tracing));
  const app = createApp({ config: resolved, logger: createLogger('info', destination), ...extra, store, ...(tracing ? { tracing } : {}) });
  const address = await app.listen();
  return {
    app,
    url: `http://127.0.0.1:${address.port.toString()}`,
    logs,
    close: async () => {
      await app.shutdown(200);
      if (!extra.store) await store.close();
    },
  };
}

/** A config with one `openai` provider named `upstream` pointed at a mock, and alias `gpt-test`. */
export function openAiConfig(baseUrl: string, apiKey: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    providers: { upstream: { type: 'openai', baseUrl, apiKey } },
    models: { 'gpt-test': { provider: 'upstream', model: 'gpt-4o-mini' } },
    ...extra,
  };
}

/** Reads an SSE response body and returns the `data:` payloads, in order. */
export async function readDataLines(response: Response): Promise<string[]> {
  const text = await response.text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => line.slice('data: '.length));
}

/**
 * Starts a streaming chat, reads its first chunk, then drops the connection as a leaving user
 * would. Resolves with the time of the abort (performance.now()), to compare with the moment the
 * upstream saw its connection close.
 */
export async function abortStreamAfterFirstRead(baseUrl: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<number> {
  const controller = new AbortController();
  const response = await fetch(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ stream: true, ...body }),
    signal: controller.signal,
  });
  const reader = response.body!.getReader();
  await reader.read();
  const abortedAt = performance.now();
  controller.abort();
  return abortedAt;
}
