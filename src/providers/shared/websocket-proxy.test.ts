// Which proxy a WebSocket provider uses: its own first, then the environment's by scheme, minus
// NO_PROXY, matched as curl and undici match it.
import { describe, expect, it } from 'vitest';
import { bypassed, proxyFor } from './websocket-proxy.js';

const target = new URL('wss://spark-api.xf-yun.com/v3.5/chat');

describe('proxyFor', () => {
  it("uses the provider's own proxy first, even for a host NO_PROXY names", () => {
    expect(proxyFor(target, 'http://own:3128', { httpsProxy: 'http://env:3128', noProxy: 'xf-yun.com' })).toBe('http://own:3128');
  });

  it('takes HTTPS_PROXY for wss:// (HTTP_PROXY when it is the only one) and HTTP_PROXY for ws://', () => {
    expect(proxyFor(target, undefined, { httpsProxy: 'http://secure:1', httpProxy: 'http://plain:2' })).toBe('http://secure:1');
    expect(proxyFor(target, undefined, { httpProxy: 'http://plain:2' })).toBe('http://plain:2');
    expect(proxyFor(new URL('ws://127.0.0.1:9000/v1'), undefined, { httpsProxy: 'http://secure:1', httpProxy: 'http://plain:2' })).toBe('http://plain:2');
    expect(proxyFor(new URL('ws://127.0.0.1:9000/v1'), undefined, { httpsProxy: 'http://secure:1' })).toBeUndefined();
  });

  it('connects directly without any proxy setting', () => {
    expect(proxyFor(target, undefined, {})).toBeUndefined();
  });
});

describe('NO_PROXY', () => {
  it.each([
    ['*', true],
    ['xf-yun.com', true],
    ['.xf-yun.com', true],
    ['*.xf-yun.com', true],
    ['spark-api.xf-yun.com:443', true],
    ['spark-api.xf-yun.com:8443', false],
    ['other.com, xf-yun.com', true],
    ['yun.com', false],
    ['localhost,127.0.0.1', false],
    ['', false],
  ])('%j → bypassed: %s', (noProxy, expected) => {
    expect(bypassed(target, noProxy)).toBe(expected);
  });

  it('matches IPv6 literals without their brackets', () => {
    expect(bypassed(new URL('ws://[::1]:9000/'), '::1')).toBe(true);
    expect(bypassed(new URL('ws://[::1]:9000/'), '[::1]:9000')).toBe(true);
    expect(bypassed(new URL('ws://[::1]:9000/'), '[::1]:80')).toBe(false);
  });
});
