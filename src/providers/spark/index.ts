// The `spark` provider: iFlytek Spark chat over WebSocket. One socket per generation, opened
// with the signed URL; closing it is how a generation is cancelled.
import WebSocket from 'ws';
import type { ResolvedSparkProvider } from './config.js';
import { SluiceError } from '../../errors/sluice-error.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import type { CallContext, ChatRequest, ProviderAdapter } from '../../contract/provider.js';
import type { AdapterDependencies } from '../definition.js';
import { knownVersions, requestFrame, resolveVersion, signedUrl } from './request.js';
import { sparkHandshakeError } from './errors.js';
import { decodeFrame } from './stream.js';
import { websocketProxyAgent } from '../shared/websocket-proxy.js';

type Item = { kind: 'frame'; text: string } | { kind: 'closed'; code: number } | { kind: 'failed'; error: unknown };

/** Each generation opens its own socket, through the provider's `proxy:` or HTTPS_PROXY/HTTP_PROXY minus NO_PROXY. */
export function createSparkAdapter(config: ResolvedSparkProvider, dependencies: AdapterDependencies): ProviderAdapter {
  const provider = config.id;

  async function* stream(request: ChatRequest, context: CallContext): AsyncGenerator<readonly StreamEvent[]> {
    const { path, domain } = resolveVersion(config, request.model);
    const frame = requestFrame(config, request, domain);
    context.signal.throwIfAborted();
    const url = signedUrl(config, path, dependencies.now());
    const agent = websocketProxyAgent(new URL(url), config.proxy, dependencies.outboundProxy);
    const socket = new WebSocket(url, { handshakeTimeout: config.timeouts.connectMs, perMessageDeflate: false, ...(agent ? { agent } : {}), ...(context.traceparent !== undefined ? { headers: { traceparent: context.traceparent } } : {}) });
    // Messages become a queue the generator drains; `wake` resolves the pending read.
    const queue: Item[] = [];
    let wake: (() => void) | undefined;
    const push = (item: Item) => {
      queue.push(item);
      wake?.();
    };
    const cancel = () => socket.terminate();
    context.signal.addEventListener('abort', cancel, { once: true });
    socket.on('unexpected-response', (_request, response) => {
      push({ kind: 'failed', error: sparkHandshakeError(response.statusCode ?? 0, provider) });
      response.resume();
      socket.terminate();
    });
    socket.on('error', (error) => push({ kind: 'failed', error }));
    socket.on('message', (data, isBinary) => {
      if (!isBinary) push({ kind: 'frame', text: textOf(data) });
    });
    socket.on('close', (code) => push({ kind: 'closed', code }));
    socket.once('open', () => socket.send(frame));
    try {
      let started = false;
      for (;;) {
        if (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        const batch: StreamEvent[] = [];
        let last = false;
        while (queue.length > 0) {
          const item = queue.shift()!;
          if (context.signal.aborted) throw context.signal.reason;
          if (item.kind === 'failed') throw toTransportError(item.error, provider);
          if (item.kind === 'closed') {
            throw new SluiceError('upstream_stream_interrupted', { provider, message: `Provider "${provider}" (Spark) closed the socket (code ${item.code.toString()}) before the last frame.` });
          }
          const decoded = decodeFrame(item.text, provider);
          if (!started) {
            started = true;
            batch.push({ type: 'start', upstreamModel: domain });
          }
          batch.push(...decoded.events);
          if (decoded.last) {
            last = true;
            break;
          }
        }
        if (batch.length > 0) yield batch;
        // The server closes the socket after the last frame; nothing more is awaited.
        if (last) return;
      }
    } finally {
      context.signal.removeEventListener('abort', cancel);
      if (socket.readyState !== WebSocket.CLOSED) socket.terminate();
    }
  }

  return {
    id: provider,
    type: 'spark',
    models: config.models ?? Object.keys({ ...knownVersions, ...config.versions }),
    stream,
    close: async () => {},
  };
}

/** ws hands over a Buffer, an ArrayBuffer, or the fragments of one message. */
function textOf(data: WebSocket.RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

function toTransportError(error: unknown, provider: string): unknown {
  if (error instanceof SluiceError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/handshake has timed out/i.test(message)) return new SluiceError('upstream_connect_timeout', { provider, cause: error, message: `Connecting to provider "${provider}" (Spark) timed out.` });
  const code = (error as { code?: string } | null)?.code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new SluiceError('upstream_connect_failed', { provider, cause: error, message: `Could not connect to provider "${provider}" (Spark) (${code}).` });
  return new SluiceError('upstream_stream_interrupted', { provider, cause: error, message: `The connection to provider "${provider}" (Spark) failed: ${message}` });
}
