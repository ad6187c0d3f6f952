// Reads a JSON request body with a size limit.
import type { IncomingMessage } from 'node:http';
import { SluiceError, toSluiceError } from '../errors/sluice-error.js';

/**
 * The body parsed as JSON. Rejects with `body_too_large` (over `limitBytes`, declared or sent; the
 * rest is drained and the request destroyed), `invalid_json` (empty or not JSON), or the stream's
 * own error (`ERR_STREAM_PREMATURE_CLOSE` when the client left mid-body).
 *
 * Read with 'data'/'end' listeners, not `for await`: the async iterator cost promises per chunk
 * and a destroy at the end, on every request (docs/decisions/0025-per-request-path.md). The
 * outcomes are the iterator's.
 */
export function readJsonBody(request: IncomingMessage, limitBytes: number): Promise<unknown> {
  const tooLarge = () =>
    new SluiceError('body_too_large', { message: `The request body is larger than ${limitBytes.toString()} bytes (server.bodyLimitBytes).` });
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > limitBytes) {
    request.resume();
    return Promise.reject(tooLarge());
  }
  // Gone before it was read (the client left while it was authenticated): no event will come.
  if (request.errored) return Promise.reject(request.errored);
  if (request.destroyed) return Promise.reject(prematureClose());
  // The whole declared body came with the head (the usual small request) and node:http holds it:
  // it is taken now rather than over the ticks that 'data' and 'end' take (decision 0027). The
  // parser never passes on more than Content-Length, so holding that many bytes means all of them;
  // `resume` lets the stream reach its 'end' as if read through.
  if (declared > 0 && request.readableLength === declared && request.readableFlowing === null) {
    const bytes = request.read() as Buffer | null;
    request.resume();
    try {
      return Promise.resolve(parseJsonBody(bytes ?? Buffer.alloc(0)));
    } catch (error) {
      return Promise.reject(toSluiceError(error));
    }
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        stop();
        request.resume();
        // As the iterator did on leaving the loop early.
        request.destroy();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      try {
        resolve(parseJsonBody(chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks)));
      } catch (error) {
        reject(toSluiceError(error)); // parseJsonBody throws SluiceErrors only: unchanged
      }
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    const onClose = () => {
      stop();
      reject(prematureClose());
    };
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('close', onClose);
  });
}

/** The error the stream iterator gave for a request that closed before its end. */
function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

function parseJsonBody(bytes: Buffer): unknown {
  const text = bytes.toString('utf8');
  if (text.trim() === '') throw new SluiceError('invalid_json', { message: 'The request body is empty; send a JSON object.' });
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SluiceError('invalid_json', { message: `The request body is not valid JSON (${(error as Error).message}).` });
  }
}
