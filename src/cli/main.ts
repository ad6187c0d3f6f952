#!/usr/bin/env node
// The `sluice` command: serve, check-config, keys, usage, help.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../config/load.js';
import { plural } from '../config/issue-messages.js';
import { createStore } from '../store/create-store.js';
import { serve } from './serve.js';
import { keysCommand, keysHelp } from './keys.js';
import { usageCommand, usageHelp } from './usage.js';
import { chatCommand } from './chat.js';

const help = `sluice: a streaming gateway for LLM APIs

Usage:
  sluice serve [--config FILE]     start the gateway (no config: the built-in demo model on 127.0.0.1:8080)
  sluice check-config FILE         validate a config file; prints every problem and exits 1 if any
  sluice chat "question"           stream an answer to the terminal (sluice chat --help)
  sluice keys create|list|revoke   manage API keys in the store (sluice keys --help)
  sluice usage [--from D] [--to D] usage by user, key, model and day (sluice usage --help)
  sluice --help | --version

Environment:
  SLUICE_HOST, SLUICE_PORT (or PORT), SLUICE_LOG_LEVEL   override server.host, server.port, log.level
  SLUICE_STORE_URL                                        overrides store.url (sqlite:… or postgres://…)
  SLUICE_ADMIN_KEY                                        the admin key installed on first start
  HTTPS_PROXY, HTTP_PROXY, NO_PROXY                       outbound proxy for providers without their own
  \${NAME} in the config file is replaced by the variable NAME (\${NAME:-default} gives a default).

Docs: README.md and docs/ in the package.`;

function version(): string {
  const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return packageJson.version;
}

/** `keys` and `usage` open the configured store, run, and close it. */
async function storeCommand(command: 'keys' | 'usage', argv: string[]): Promise<number> {
  const io = { out: (text: string) => process.stdout.write(text), err: (text: string) => process.stderr.write(text) };
  const args: string[] = [];
  let configPath = process.env['SLUICE_CONFIG'];
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] ?? '';
    if (arg === '--config' || arg === '-c') configPath = argv[++index];
    else if (arg.startsWith('--config=')) configPath = arg.slice('--config='.length);
    else args.push(arg);
  }
  if (args.includes('--help') || args.includes('-h')) {
    io.out(`${command === 'keys' ? keysHelp : usageHelp}\n`);
    return 0;
  }
  let config;
  try {
    config = loadConfig({ path: configPath });
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`${error.message}\n`);
      return 1;
    }
    throw error;
  }
  const store = await createStore(config.store.url);
  try {
    return command === 'keys' ? await keysCommand(args, store, io) : await usageCommand(args, store, io);
  } catch (error) {
    // parseArgs rejects unknown flags with a TypeError whose message names the flag.
    if (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
      io.err(`sluice ${command}: ${error.message}\n${command === 'keys' ? keysHelp : usageHelp}\n`);
      return 2;
    }
    throw error;
  } finally {
    await store.close();
  }
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'keys' || argv[0] === 'usage') return storeCommand(argv[0], argv.slice(1));
  if (argv[0] === 'chat') {
    const interrupted = new AbortController();
    process.once('SIGINT', () => interrupted.abort());
    return chatCommand(argv.slice(1), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env }, interrupted.signal);
  }
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
        process.stdout.write(`${file}: OK (${plural(Object.keys(config.providers).length, 'provider')}, ${plural(Object.keys(config.models).length, 'model alias', 'model aliases')})\n`);
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
