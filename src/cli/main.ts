#!/usr/bin/env node
// The `sluice` command: serve, check-config, help.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../config/load.js';
import { serve } from './serve.js';

const help = `sluice: a streaming gateway for LLM APIs

Usage:
  sluice serve [--config FILE]     start the gateway (no config: the built-in demo model on 127.0.0.1:8080)
  sluice check-config FILE         validate a config file; prints every problem and exits 1 if any
  sluice --help | --version

Environment:
  SLUICE_HOST, SLUICE_PORT (or PORT), SLUICE_LOG_LEVEL   override server.host, server.port, log.level
  HTTPS_PROXY, HTTP_PROXY, NO_PROXY                       outbound proxy for providers without their own
  \${NAME} in the config file is replaced by the variable NAME (\${NAME:-default} gives a default).

Docs: README.md and docs/ in the package.`;

function version(): string {
  const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return packageJson.version;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(`${help}\n`);
    return command === undefined && !values.help ? 1 : 0;
  }
  switch (command) {
    case 'serve':
      await serve(values.config ?? process.env['SLUICE_CONFIG']);
      return 0;
    case 'check-config': {
      const file = rest[0] ?? values.config;
      if (!file) {
        process.stderr.write('sluice check-config: name the config file, e.g. sluice check-config sluice.yaml\n');
        return 2;
      }
      try {
        const config = loadConfig({ path: file });
        process.stdout.write(`${file}: OK (${Object.keys(config.providers).length.toString()} providers, ${Object.keys(config.models).length.toString()} model aliases)\n`);
        return 0;
      } catch (error) {
        if (error instanceof ConfigError) {
          process.stderr.write(`${error.message}\n`);
          return 1;
        }
        throw error;
      }
    }
    default:
      process.stderr.write(`sluice: unknown command "${command}"\n\n${help}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
