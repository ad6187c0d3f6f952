// Generation ids: 16 characters of base64url from 96 random bits, short ASCII that is safe in
// URLs, SSE `id:` lines and `Last-Event-ID` headers. Random bytes are drawn 3 KiB at a time:
// one randomBytes call per id showed up as 2% of the gateway's CPU.
import { randomBytes } from 'node:crypto';

const idBytes = 12;
const idsPerPool = 256;

export function createGenerationIdFactory(): () => string {
  let pool = Buffer.alloc(0);
  let offset = 0;
  return () => {
    if (offset + idBytes > pool.length) {
      pool = randomBytes(idBytes * idsPerPool);
      offset = 0;
    }
    const id = pool.toString('base64url', offset, offset + idBytes);
    offset += idBytes;
    return id;
  };
}
