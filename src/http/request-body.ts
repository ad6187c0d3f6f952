// Reads a JSON request body with a size limit.
import type { IncomingMessage } from 'node:http';
import { SluiceError } from '../errors/sluice-error.js';

export async function readJsonBody(request: IncomingMessage, limitBytes: number): Promise<unknown> {
  const tooLarge = () =>
    new SluiceError('body_too_large', { message: `The request body is larger than ${limitBytes.toString()} bytes (server.bodyLimitBytes).` });
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > limitBytes) {
    request.resume();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) {
      request.resume();
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new SluiceError('invalid_json', { message: 'The request body is empty; send a JSON object.' });
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SluiceError('invalid_json', { message: `The request body is not valid JSON (${(error as Error).message}).` });
  }
}
