// /metrics can be kept off the public interface: metrics.listen serves it on a listener of its own
// (and the main port answers 404 there), metrics.auth: admin asks for an admin credential. The
// default stays as it was: public on the main port.
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { resolveConfig } from '../src/config/load.js';
import { createLogger } from '../src/observability/logger.js';
import { createStore } from '../src/store/create-store.js';
import { startGateway, type TestGateway } from './support/gateway.js';

const gateways: TestGateway[] = [];
afterEach(async () => {
  await Promise.all(gateways.splice(0).map((gateway) => gateway.close()));
});

async function start(config: Record<string, unknown>): Promise<TestGateway> {
  const gateway = await startGateway(config);
  gateways.push(gateway);
  return gateway;
}

function metricsUrl(gateway: TestGateway): string {
  const address = gateway.app.metricsServer?.address() as AddressInfo | null | undefined;
  if (!address) throw new Error('no metrics listener');
  return `http://127.0.0.1:${address.port.toString()}/metrics`;
}

describe('metrics.listen', () => {
  it('serves /metrics on its own listener, and the main port answers 404 for it', async () => {
    const gateway = await start({ metrics: { listen: '127.0.0.1:0' } });
    await (await fetch(`${gateway.url}/healthz`)).text();

    const scraped = await fetch(metricsUrl(gateway));
    expect(scraped.status).toBe(200);
    expect(scraped.headers.get('content-type')).toContain('text/plain');
    // The same registry as the gateway's: the main port's requests are counted there.
    expect(await scraped.text()).toMatch(/sluice_http_requests_total\{route="\/healthz",status="200",model="",provider=""\} 1/);

    const main = await fetch(`${gateway.url}/metrics`);
    expect(main.status).toBe(404);
    expect(((await main.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });

  it('serves nothing but /metrics', async () => {
    const gateway = await start({ metrics: { listen: '127.0.0.1:0' } });
    const other = await fetch(metricsUrl(gateway).replace('/metrics', '/healthz'));
    expect(other.status).toBe(404);
    await other.text();
  });

  it('is closed with the app', async () => {
    const gateway = await start({ metrics: { listen: '127.0.0.1:0' } });
    const url = metricsUrl(gateway);
    await (await fetch(url)).text();
    await gateway.close();
    gateways.splice(gateways.indexOf(gateway), 1);
    expect(gateway.app.metricsServer?.listening).toBe(false);
    await expect(fetch(url)).rejects.toThrow();
  });

  it('on a port already taken, fails listen() and leaves the main port closed too', async () => {
    const occupier = createServer();
    await new Promise<void>((resolve) => occupier.listen(0, '127.0.0.1', resolve));
    const taken = (occupier.address() as AddressInfo).port;
    const config = resolveConfig({ server: { host: '127.0.0.1', port: 0 }, auth: { mode: 'none' }, store: { url: 'sqlite::memory:' }, metrics: { listen: `127.0.0.1:${taken.toString()}` } }, {});
    const store = await createStore(config.store.url);
    const app = createApp({ config, store, logger: createLogger('silent') });
    try {
      await expect(app.listen()).rejects.toMatchObject({ code: 'EADDRINUSE', port: taken });
      expect(app.server.listening).toBe(false);
    } finally {
      await app.shutdown(0);
      await store.close();
      await new Promise((resolve) => occupier.close(resolve));
    }
  });
});

describe('metrics.auth', () => {
  it('admin: refuses no credential and a user key, answers an admin key', async () => {
    const gateway = await start({ auth: { mode: 'keys' }, metrics: { auth: 'admin' } });
    const user = await gateway.app.keys.create({ userId: 'alice', role: 'user' });
    const admin = await gateway.app.keys.create({ userId: 'ops', role: 'admin' });
    const asUser = await fetch(`${gateway.url}/metrics`, { headers: { authorization: `Bearer ${user.key}` } });
    expect(asUser.status).toBe(403);
    expect(((await asUser.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    const anonymous = await fetch(`${gateway.url}/metrics`);
    expect(anonymous.status).toBe(401);
    await anonymous.text();
    const asAdmin = await fetch(`${gateway.url}/metrics`, { headers: { authorization: `Bearer ${admin.key}` } });
    expect(asAdmin.status).toBe(200);
    expect(await asAdmin.text()).toContain('sluice_http_requests_total');
  });

  it('admin applies on the separate listener too', async () => {
    const gateway = await start({ auth: { mode: 'keys' }, metrics: { listen: '127.0.0.1:0', auth: 'admin' } });
    const user = await gateway.app.keys.create({ userId: 'alice', role: 'user' });
    const admin = await gateway.app.keys.create({ userId: 'ops', role: 'admin' });
    const asUser = await fetch(metricsUrl(gateway), { headers: { authorization: `Bearer ${user.key}` } });
    expect(asUser.status).toBe(403);
    await asUser.text();
    const asAdmin = await fetch(metricsUrl(gateway), { headers: { authorization: `Bearer ${admin.key}` } });
    expect(asAdmin.status).toBe(200);
    await asAdmin.text();
  });

  it('by default /metrics stays public on the main port, even with keys required elsewhere', async () => {
    const gateway = await start({ auth: { mode: 'keys' } });
    expect(gateway.app.metricsServer).toBeUndefined();
    const response = await fetch(`${gateway.url}/metrics`);
    expect(response.status).toBe(200);
    await response.text();
    const models = await fetch(`${gateway.url}/v1/models`);
    expect(models.status).toBe(401);
    await models.text();
  });
});
