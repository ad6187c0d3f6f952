// The metrics settings: public on the main port unless told otherwise, a listener of its own as
// host:port, and an address that cannot work is refused with the setting's name.
import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from './load.js';

function problems(document: unknown, env: Record<string, string> = {}): string[] {
  try {
    resolveConfig(document, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('metrics settings', () => {
  it('default to /metrics on the main port, readable by anyone (as before the setting existed)', () => {
    expect(resolveConfig({}, {}).metrics).toEqual({ auth: 'none' });
  });

  it('take a listener of its own as host:port, IPv6 hosts in brackets, and admin-only access', () => {
    expect(resolveConfig({ metrics: { listen: '127.0.0.1:9464' } }, {}).metrics).toEqual({ auth: 'none', listen: { host: '127.0.0.1', port: 9464 } });
    expect(resolveConfig({ metrics: { listen: '[::1]:9464', auth: 'admin' } }, {}).metrics).toEqual({ auth: 'admin', listen: { host: '::1', port: 9464 } });
    expect(resolveConfig({ metrics: { listen: 'localhost:0' } }, {}).metrics.listen).toEqual({ host: 'localhost', port: 0 });
    expect(resolveConfig({ metrics: { auth: 'admin' } }, {}).metrics).toEqual({ auth: 'admin' });
  });

  it('refuse what cannot be listened on, naming the setting', () => {
    expect(problems({ metrics: { listen: '9464' } })).toEqual(['metrics.listen: use host:port, such as 127.0.0.1:9464 or [::1]:9464']);
    expect(problems({ metrics: { listen: '127.0.0.1:99999' } })).toEqual(['metrics.listen: 99999 is not a port number (0-65535)']);
    expect(problems({ metrics: { auth: 'token' } })).toEqual(['metrics.auth: must be one of: none, admin (got string "token")']);
    expect(problems({ server: { port: 9090 }, metrics: { listen: '127.0.0.1:9090' } })).toEqual(['metrics.listen: port 9090 is the main port (server.port); choose another port']);
    // The main port as the environment sets it counts too.
    expect(problems({ metrics: { listen: '127.0.0.1:9464' } }, { SLUICE_PORT: '9464' })).toEqual(['metrics.listen: port 9464 is the main port (server.port); choose another port']);
  });
});
