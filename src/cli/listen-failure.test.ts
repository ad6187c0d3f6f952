// A failed listen is told as one line naming the port and the setting to change, for the main
// listener and the metrics one alike; other errors are left alone.
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeListenFailure } from './listen-failure.js';

let occupier: Server;
let taken: number;
beforeAll(async () => {
  occupier = createServer();
  await new Promise<void>((resolve) => occupier.listen(0, '127.0.0.1', resolve));
  taken = (occupier.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => occupier.close(resolve));
});

/** The error Node gives for listening on 127.0.0.1:`port` now. */
async function listenError(port: number, host = '127.0.0.1'): Promise<unknown> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', resolve);
    server.listen(port, host, () => server.close(() => resolve(undefined)));
  });
}

describe('describeListenFailure', () => {
  it('names the main port and how to change it', async () => {
    const config = { server: { host: '127.0.0.1', port: taken }, metrics: { auth: 'none' as const } };
    expect(describeListenFailure(await listenError(taken), config)).toBe(`port ${taken.toString()} is in use; set server.port in the config or SLUICE_PORT`);
  });

  it('names metrics.listen when the metrics listener is the one refused', async () => {
    const config = { server: { host: '127.0.0.1', port: 8080 }, metrics: { auth: 'none' as const, listen: { host: '127.0.0.1', port: taken } } };
    expect(describeListenFailure(await listenError(taken), config)).toBe(`port ${taken.toString()} is in use; set metrics.listen in the config`);
  });

  it('names server.host for an address this machine does not have', async () => {
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a real interface.
    const config = { server: { host: '192.0.2.1', port: 8080 }, metrics: { auth: 'none' as const } };
    expect(describeListenFailure(await listenError(0, '192.0.2.1'), config)).toBe('192.0.2.1 is not an address of this machine; set server.host in the config or SLUICE_HOST');
  });

  it('leaves other errors alone', () => {
    const config = { server: { host: '127.0.0.1', port: 8080 }, metrics: { auth: 'none' as const } };
    expect(describeListenFailure(new Error('boom'), config)).toBeUndefined();
    expect(describeListenFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', syscall: 'connect' }), config)).toBeUndefined();
  });
});
