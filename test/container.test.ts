// The container files, checked without a container engine: the Dockerfile parses into the stages
// it promises (production dependencies only in the runtime, a non-root user, a health check on
// /readyz, the exposed port the one Sluice listens on, /data for SQLite), .dockerignore keeps local
// stores and builds out, and compose.yaml's services and environment resolve to a valid cluster
// config through Sluice's own config loader. Building and running the image needs podman or
// docker with the base image present locally; otherwise that test is skipped, saying which.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { resolveConfig } from '../src/config/load.js';
import { parseStoreUrl } from '../src/store/store-url.js';

/** The repository: the image's build context. This file never uses the host's dist/. */
const root = new URL('..', import.meta.url).pathname;

// ---------------------------------------------------------------------------------------------
// A Dockerfile reader: enough of the reference's grammar to check this file, strict about the rest.

const knownInstructions = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL']);

interface Instruction {
  readonly keyword: string;
  readonly arguments: string;
  /** 1-based line of the instruction's first line. */
  readonly line: number;
}

interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

interface Dockerfile {
  /** ARGs before the first FROM, with their defaults: they may be used in FROM lines. */
  readonly globalArguments: ReadonlyMap<string, string>;
  readonly stages: Stage[];
}

function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const first = lines[index] ?? '';
    if (/^\s*(#|$)/.test(first)) continue;
    const line = index + 1;
    let logical = first;
    // A trailing backslash continues the instruction; comment lines inside it are dropped.
    while (/\\\s*$/.test(logical)) {
      logical = logical.replace(/\\\s*$/, ' ');
      index++;
      if (index >= lines.length) throw new Error(`Dockerfile:${line.toString()}: the file ends inside a continued instruction`);
      const next = lines[index] ?? '';
      if (/^\s*#/.test(next)) {
        logical += '\\';
        continue;
      }
      logical += next;
    }
    const match = /^\s*([A-Za-z]+)\s+(.*\S)\s*$/.exec(logical);
    if (!match) throw new Error(`Dockerfile:${line.toString()}: not an instruction: ${logical}`);
    const keyword = (match[1] ?? '').toUpperCase();
    if (!knownInstructions.has(keyword)) throw new Error(`Dockerfile:${line.toString()}: unknown instruction ${keyword}`);
    instructions.push({ keyword, arguments: match[2] ?? '', line });
  }
  const globalArguments = new Map<string, string>();
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const from = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+([a-z][a-z0-9_.-]*))?$/i.exec(instruction.arguments);
      if (!from) throw new Error(`Dockerfile:${instruction.line.toString()}: FROM <image> [AS <name>] expected`);
      const image = (from[1] ?? '').replace(/\$\{([A-Za-z_]+)\}|\$([A-Za-z_]+)/g, (_whole, braced?: string, bare?: string) => {
        const name = braced ?? bare ?? '';
        const value = globalArguments.get(name);
        if (value === undefined) throw new Error(`Dockerfile:${instruction.line.toString()}: FROM uses $${name}, which no ARG before the first FROM defines`);
        return value;
      });
      stages.push({ image, name: from[2], instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword !== 'ARG') throw new Error(`Dockerfile:${instruction.line.toString()}: only ARG may come before the first FROM`);
      const [name = '', value = ''] = instruction.arguments.split('=', 2);
      globalArguments.set(name.trim(), value.trim());
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return { globalArguments, stages };
}

/** `KEY=value KEY2=value2` (values may be double-quoted) as a map. */
function parseEnv(argumentsText: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const [, key = '', quoted, bare] of argumentsText.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"|(\S*))/g)) values.set(key, quoted ?? bare ?? '');
  return values;
}

/** An exec-form (JSON array) argument list, or an error naming the instruction. */
function execForm(instruction: Instruction, text = instruction.arguments): string[] {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed) || !parsed.every((part) => typeof part === 'string')) throw new Error(`Dockerfile:${instruction.line.toString()}: ${instruction.keyword} must be a JSON array of strings`);
  return parsed;
}

const dockerfileText = readFileSync(join(root, 'Dockerfile'), 'utf8');
const dockerfile = parseDockerfile(dockerfileText);
const runtime = dockerfile.stages.at(-1);
const runtimeEnv = new Map<string, string>();
for (const instruction of runtime?.instructions ?? []) if (instruction.keyword === 'ENV') for (const [key, value] of parseEnv(instruction.arguments)) runtimeEnv.set(key, value);
const packageJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string }; bin: Record<string, string> };

function stageNamed(name: string): Stage | undefined {
  return dockerfile.stages.find((stage) => stage.name === name);
}

function only(stage: Stage | undefined, keyword: string): Instruction[] {
  return (stage?.instructions ?? []).filter((instruction) => instruction.keyword === keyword);
}

describe('Dockerfile', () => {
  it('parses into named stages, the last one the runtime, each COPY --from naming an earlier stage', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of dockerfile.stages) expect(stage.name, stage.image).toMatch(/^[a-z]/);
    dockerfile.stages.forEach((stage, index) => {
      for (const copy of only(stage, 'COPY')) {
        const from = /--from=(\S+)/.exec(copy.arguments)?.[1];
        if (from !== undefined) expect(dockerfile.stages.slice(0, index).map((earlier) => earlier.name), `COPY --from=${from}`).toContain(from);
      }
    });
  });

  it('runs on a Node the package accepts (engines >=20.18.1)', () => {
    const minimum = /^>=(\d+)\.(\d+)\.(\d+)$/.exec(packageJson.engines.node);
    expect(minimum, 'engines.node has the form >=X.Y.Z').not.toBeNull();
    for (const stage of dockerfile.stages) {
      const tag = /^node:(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-|$)/.exec(stage.image);
      expect(tag, `${stage.image} is an official node image with a version tag`).not.toBeNull();
      const version = [Number(tag?.[1]), Number(tag?.[2] ?? Infinity), Number(tag?.[3] ?? Infinity)];
      const required = [Number(minimum?.[1]), Number(minimum?.[2]), Number(minimum?.[3])];
      // A bare major (node:20) means its newest release, which is past 20.18.1.
      const comparison = version.map((part, index) => Math.sign(part - (required[index] ?? 0))).find((sign) => sign !== 0) ?? 0;
      expect(comparison, `${stage.image} against ${packageJson.engines.node}`).toBeGreaterThanOrEqual(0);
    }
  });

  it('gives the runtime production dependencies only, and the build from the stage that compiled it', () => {
    const copies = only(runtime, 'COPY').map((copy) => copy.arguments);
    const modulesFrom = /--from=(\S+)\s+\S*node_modules\b/.exec(copies.find((copy) => /node_modules/.test(copy)) ?? '')?.[1];
    expect(modulesFrom, 'the runtime copies node_modules from another stage').toBeDefined();
    const installs = only(stageNamed(modulesFrom ?? ''), 'RUN').map((run) => run.arguments).filter((run) => /\bnpm (ci|install)\b/.test(run));
    expect(installs.length).toBeGreaterThan(0);
    for (const install of installs) expect(install).toMatch(/--omit=dev\b/);
    // No install in the runtime itself, which has no compilers and must not get dev dependencies.
    for (const run of only(runtime, 'RUN')) expect(run.arguments).not.toMatch(/\bnpm (ci|install|i)\b/);
    const distFrom = /--from=(\S+)\s+\S*\/dist\b/.exec(copies.find((copy) => /\/dist\b/.test(copy)) ?? '')?.[1];
    expect(only(stageNamed(distFrom ?? ''), 'RUN').some((run) => /npm run build\b/.test(run.arguments))).toBe(true);
    // What the CLI and the playground read at run time: package.json (the version), web/.
    expect(copies.some((copy) => /^package\.json\s/.test(copy))).toBe(true);
    expect(copies.some((copy) => /^web\s/.test(copy))).toBe(true);
  });

  it('runs as a user who is not root and owns /data, the SQLite volume', () => {
    const users = only(runtime, 'USER');
    const user = users.at(-1)?.arguments.split(':')[0];
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    // The official node images have this user (uid 1000); another name would need a useradd here.
    expect(user === 'node' || /^[1-9]\d*$/.test(user ?? '') || only(runtime, 'RUN').some((run) => run.arguments.includes(`useradd`))).toBe(true);
    expect(only(runtime, 'VOLUME').map((volume) => volume.arguments)).toContain('/data');
    expect(only(runtime, 'RUN').some((run) => new RegExp(`chown\\s+(-R\\s+)?${user ?? ''}(:\\S+)?\\s+/data\\b`).test(run.arguments))).toBe(true);
    expect(runtimeEnv.get('SLUICE_STORE_URL')).toMatch(/^sqlite:\/data\//);
    // USER comes before the command, so the process itself is unprivileged.
    const entrypoint = runtime?.instructions.findIndex((instruction) => instruction.keyword === 'ENTRYPOINT') ?? -1;
    expect(runtime?.instructions.findIndex((instruction) => instruction === users.at(-1))).toBeLessThan(entrypoint);
  });

  it('checks health on /readyz, at the port it listens on and exposes', () => {
    const healthchecks = only(runtime, 'HEALTHCHECK');
    expect(healthchecks).toHaveLength(1);
    const healthcheck = healthchecks[0]!;
    const command = /\bCMD\s+(\[.*\])$/.exec(healthcheck.arguments)?.[1];
    expect(command, 'HEALTHCHECK … CMD ["…"] (exec form: no shell needed in the image)').toBeDefined();
    const argv = execForm(healthcheck, command);
    expect(argv.join(' ')).toContain('/readyz');
    expect(argv[0]).toBe('node');
    const port = runtimeEnv.get('SLUICE_PORT');
    expect(port).toMatch(/^\d+$/);
    expect(only(runtime, 'EXPOSE').map((expose) => expose.arguments.replace(/\/tcp$/, ''))).toEqual([port]);
    // The check reads SLUICE_PORT, falling back to the same number.
    expect(argv.join(' ')).toContain(`process.env.SLUICE_PORT || ${port ?? ''}`);
  });

  it('starts `sluice serve` on 0.0.0.0 with API keys, a config Sluice accepts', () => {
    const entrypoint = only(runtime, 'ENTRYPOINT');
    const cmd = only(runtime, 'CMD');
    expect([...execForm(entrypoint[0]!), ...execForm(cmd[0]!)]).toEqual(['node', packageJson.bin['sluice'], 'serve']);
    expect(runtimeEnv.get('SLUICE_HOST')).toBe('0.0.0.0');
    const config = resolveConfig({}, Object.fromEntries(runtimeEnv), 'Dockerfile ENV');
    expect(config.auth.mode).toBe('keys');
    expect(config.server).toMatchObject({ host: '0.0.0.0', port: Number(runtimeEnv.get('SLUICE_PORT')) });
    expect(parseStoreUrl(config.store.url)).toEqual({ kind: 'sqlite', path: '/data/sluice.db' });
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    // Built or installed in the image, local data (an SQLite store holds key hashes), history.
    for (const entry of ['node_modules', 'dist', 'data', '.git']) expect(ignored).toContain(entry);
    for (const stage of dockerfile.stages) {
      for (const copy of only(stage, 'COPY')) {
        if (copy.arguments.includes('--from=')) continue;
        const sources = copy.arguments.split(/\s+/).filter((part) => !part.startsWith('--')).slice(0, -1);
        for (const source of sources) {
          expect(existsSync(join(root, source)), `COPY ${source}`).toBe(true);
          expect(ignored, `COPY ${source}`).not.toContain(source.replace(/\/$/, ''));
        }
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// compose.yaml

interface ComposeService {
  build?: string | { context: string };
  image?: string;
  environment?: Record<string, string | number | null>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}

const composeText = readFileSync(join(root, 'compose.yaml'), 'utf8');
// merge: the file shares the nodes' settings with a YAML anchor and `<<:`, as compose allows.
const compose = parseYaml(composeText, { merge: true }) as { services: Record<string, ComposeService> };
const sampleAdminKey = `sk-sluice-${randomBytes(6).toString('hex')}-${randomBytes(32).toString('base64url')}`;

/** Compose's interpolation: ${NAME}, ${NAME:-default}, ${NAME:?error}, from `variables`. */
function interpolate(value: string, variables: Record<string, string>): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}/g, (_whole, name: string, operator?: string, operand?: string) => {
    const set = variables[name];
    if (set !== undefined && set !== '') return set;
    if (operator === ':-') return operand ?? '';
    throw new Error(`compose.yaml needs ${name}${operator === ':?' ? `: ${operand ?? ''}` : ''}`);
  });
}

const nodes = Object.entries(compose.services).filter(([, service]) => service.build === '.' || (typeof service.build === 'object' && service.build.context === '.'));

function environmentOf(service: ComposeService, variables: Record<string, string> = { SLUICE_ADMIN_KEY: sampleAdminKey }): Record<string, string> {
  return Object.fromEntries(Object.entries(service.environment ?? {}).map(([key, value]) => [key, interpolate(String(value ?? ''), variables)]));
}

describe('compose.yaml', () => {
  it('runs two Sluice nodes from this Dockerfile beside PostgreSQL and Redis', () => {
    expect(nodes.map(([name]) => name).length).toBeGreaterThanOrEqual(2);
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['postgres', 'redis']));
  });

  it("gives each node a cluster config Sluice's loader accepts: the shared store and Redis, its own node id", () => {
    const postgres = compose.services['postgres']?.environment ?? {};
    const ids = new Set<string>();
    for (const [name, service] of nodes) {
      const environment = environmentOf(service);
      const config = resolveConfig({}, environment, `compose.yaml ${name}`);
      expect(config.auth.mode).toBe('keys');
      expect(config.server.host).toBe('0.0.0.0');
      const store = parseStoreUrl(config.store.url);
      expect(store.kind).toBe('postgres');
      // The URL names the postgres service, and the database and user it creates on first start.
      const url = new URL(config.store.url);
      expect(url.hostname).toBe('postgres');
      expect(url.pathname).toBe(`/${String(postgres['POSTGRES_DB'])}`);
      expect(url.username).toBe(String(postgres['POSTGRES_USER']));
      expect(decodeURIComponent(url.password)).toBe(interpolate(String(postgres['POSTGRES_PASSWORD']), {}));
      expect(new URL(config.cluster && 'url' in config.cluster.redis ? config.cluster.redis.url : '').hostname).toBe('redis');
      ids.add(config.cluster?.nodeId ?? '');
      // Every node gets the same admin key: whichever starts first installs it.
      expect(environment['SLUICE_ADMIN_KEY']).toBe(sampleAdminKey);
      // The published container port is the one the node listens on, and the image exposes.
      for (const mapping of service.ports ?? []) expect(mapping.split(':').at(-1)).toBe(String(config.server.port));
      expect(String(config.server.port)).toBe(runtimeEnv.get('SLUICE_PORT'));
      // Started only once the shared services answer their health checks.
      for (const dependency of ['postgres', 'redis']) {
        expect(service.depends_on?.[dependency]?.condition).toBe('service_healthy');
        expect(compose.services[dependency]?.healthcheck?.test.length).toBeGreaterThan(0);
      }
    }
    expect(ids.size).toBe(nodes.length);
  });

  it('refuses to start without SLUICE_ADMIN_KEY, saying so', () => {
    const [, first] = nodes[0] ?? [];
    expect(() => environmentOf(first ?? {}, {})).toThrow(/SLUICE_ADMIN_KEY/);
  });

  it('uses only settings the configuration docs describe', () => {
    const documented = readFileSync(join(root, 'docs/configuration.md'), 'utf8') + readFileSync(join(root, 'docs/deployment.md'), 'utf8');
    const names = new Set([...nodes.flatMap(([, service]) => Object.keys(service.environment ?? {})), ...runtimeEnv.keys()].filter((name) => name.startsWith('SLUICE_')));
    for (const name of names) expect(documented, name).toContain(name);
  });
});

// ---------------------------------------------------------------------------------------------
// Building and running the image, where an engine and the base image are at hand.

/** The engine that can build this Dockerfile offline, or why none can. */
function findEngine(): { engine: string; image: string } | { reason: string } {
  const images = [...new Set(dockerfile.stages.map((stage) => stage.image))];
  const reasons: string[] = [];
  for (const engine of ['podman', 'docker']) {
    const info = spawnSync(engine, ['info'], { encoding: 'utf8', timeout: 20_000 });
    if (info.error !== undefined) {
      reasons.push(`${engine} is not installed`);
      continue;
    }
    if (info.status !== 0) {
      reasons.push(`${engine} is installed but cannot reach its engine (${engine} info: ${(info.stderr || info.stdout).trim().split('\n')[0] ?? ''})`);
      continue;
    }
    const missing = images.filter((image) => spawnSync(engine, ['image', 'inspect', image], { stdio: 'ignore', timeout: 20_000 }).status !== 0);
    if (missing.length > 0) {
      reasons.push(`${engine} has no local copy of the base image ${missing.join(', ')} and this test does not pull one (no container registry is reachable here)`);
      continue;
    }
    return { engine, image: `sluice-container-test:${randomBytes(4).toString('hex')}` };
  }
  return { reason: reasons.join('; ') };
}

describe('the image', () => {
  it('builds without pulling, runs as non-root, becomes healthy, and the admin key works', async (context) => {
    const found = findEngine();
    if ('reason' in found) {
      console.warn(`container.test.ts: skipping the image build: ${found.reason}`);
      context.skip(found.reason);
      return;
    }
    const { engine, image } = found;
    const run = (args: string[], timeoutMs = 60_000) => spawnSync(engine, args, { encoding: 'utf8', timeout: timeoutMs, cwd: root });
    // The engine compiles Sluice inside the image (the Dockerfile's build stage); the host's dist/
    // is neither written nor read (.dockerignore leaves it out, checked above), so this runs beside
    // the files that use dist/ safely.
    const built = run(['build', engine === 'podman' ? '--pull=never' : '--pull=false', '-t', image, '.'], 15 * 60_000);
    expect(built.status, built.stderr).toBe(0);
    const adminKey = sampleAdminKey;
    const started = run(['run', '-d', '--rm', '-p', '127.0.0.1::8080', '-e', `SLUICE_ADMIN_KEY=${adminKey}`, image]);
    expect(started.status, started.stderr).toBe(0);
    const container = started.stdout.trim();
    try {
      expect(run(['exec', container, 'id', '-u']).stdout.trim()).not.toBe('0');
      const address = run(['port', container, '8080/tcp']).stdout.trim().split('\n')[0] ?? '';
      const url = `http://${address.replace(/^0\.0\.0\.0/, '127.0.0.1')}`;
      const deadline = performance.now() + 60_000;
      let ready = false;
      while (!ready && performance.now() < deadline) {
        ready = await fetch(`${url}/readyz`).then((response) => response.ok, () => false);
        if (!ready) await new Promise((resolve) => setTimeout(resolve, 500));
      }
      expect(ready, `${url}/readyz`).toBe(true);
      expect((await fetch(`${url}/admin/keys`, { headers: { authorization: `Bearer ${adminKey}` } })).status).toBe(200);
      // The image's HEALTHCHECK command, run inside it now instead of waiting for its interval.
      const healthcheck = only(runtime, 'HEALTHCHECK')[0]!;
      const check = run(['exec', container, ...execForm(healthcheck, /\bCMD\s+(\[.*\])$/.exec(healthcheck.arguments)?.[1])]);
      expect(check.status, check.stderr).toBe(0);
    } finally {
      run(['stop', '-t', '15', container]);
      run(['image', 'rm', '-f', image]);
    }
  }, 20 * 60_000);
});
