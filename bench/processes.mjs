// The benchmark's processes: the mock upstream, the relays (lean, hand, nginx) and Sluice, each
// started on a port of its own and wrapped as a target the driver can load, measure (CPU from
// /proc/<pid>/stat, memory after a forced GC for Node processes, /proc RSS for nginx) and stop.
// Every process started here is stopped by `stopAll` (and killed on exit), so no nginx or Sluice
// outlives a run.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const root = new URL('..', import.meta.url).pathname;
const clockTicks = 100; // getconf CLK_TCK on Linux
const pageBytes = 4096;
export const nginxPath = process.env.BENCH_NGINX ?? '/usr/sbin/nginx';
// One key for every hop: Sluice authenticates it as its admin key (SLUICE_ADMIN_KEY, in a SQLite
// store, with a usage row per request as in production), the relays forward it as is, and the mock
// upstream checks it.
export const benchKey = `sk-sluice-bench0000000-${'B'.repeat(43)}`;
const running = new Set();

process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** User + system CPU seconds of the given processes, from /proc/<pid>/stat. */
export function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    ticks += Number(fields[11]) + Number(fields[12]); // utime + stime
  }
  return ticks / clockTicks;
}

/** Moves every thread of process `pid` to CPU `cpu` (Linux `taskset`; its error is shown as is). */
export function pinTo(pid, cpu) {
  execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', String(cpu), String(pid)], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Resident set size in bytes of the given processes, from /proc/<pid>/statm. */
export function rssBytes(pids) {
  let pages = 0;
  for (const pid of pids) pages += Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
  return pages * pageBytes;
}

/** The pids whose parent is `pid` (nginx's workers), by reading /proc. */
function childPids(pid) {
  const children = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ');
      if (Number(fields[1]) === pid) children.push(Number(entry));
    } catch {
      // The process ended between readdir and read.
    }
  }
  return children;
}

/** The soft limit on open files a shell started here gets, or undefined if it cannot be read. */
function openFileLimit() {
  try {
    return Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
  } catch {
    return undefined;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopProcess(child, graceMs = 10_000) {
  const isRunning = () => child.exitCode === null && child.signalCode === null;
  if (isRunning()) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(graceMs)]);
    if (isRunning()) {
      child.kill('SIGKILL');
      await exited;
    }
  }
  running.delete(child);
}

export async function stopAll() {
  await Promise.all([...running].map((child) => stopProcess(child)));
}

/**
 * Starts a bench/*.mjs script as a Node process with an IPC channel (it sends `{ port }` once
 * listening). With `openFiles`, the process is started through `sh -c 'ulimit -n N; exec node …'`
 * when the current soft limit is lower, so it can hold that many sockets.
 */
export function startScript(script, env = {}, { openFiles, execArgv = [] } = {}) {
  const args = ['--expose-gc', ...execArgv, join(root, 'bench', script)];
  const options = { env: { ...process.env, BENCH_KEY: benchKey, ...env }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] };
  const limit = openFiles === undefined ? undefined : openFileLimit();
  const child =
    limit !== undefined && limit < openFiles
      ? spawn('sh', ['-c', `ulimit -n ${openFiles} && exec "$0" "$@"`, process.execPath, ...args], options)
      : spawn(process.execPath, args, options);
  running.add(child);
  return new Promise((resolve, reject) => {
    child.once('message', ({ port }) => resolve(nodeTarget(script, child, `http://127.0.0.1:${port}`)));
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
}

/** Asks a bench Node process for its memory after a forced GC (bench/memory-probe.mjs). */
function memoryOverIpc(child) {
  return new Promise((resolve) => {
    const onMessage = (message) => {
      if (!message.memory) return;
      child.off('message', onMessage);
      resolve(message.memory);
    };
    child.on('message', onMessage);
    child.send('memory');
  });
}

function nodeTarget(name, child, url) {
  return { name, url, child, pids: () => [child.pid], memory: () => memoryOverIpc(child), stop: () => stopProcess(child) };
}

/**
 * Starts Sluice from dist/ with production defaults: API keys (the bench key as admin key), a
 * SQLite store of its own with a usage row per request, metrics, and info-level logs to stdout,
 * which goes to /dev/null as it would to a log shipper. `storeUrl` puts the store elsewhere,
 * `cluster` ({ redisUrl, nodeId, keyPrefix }) makes it a cluster node.
 */
export async function startSluice(upstreamUrl, { heartbeatMs = 15_000, storeUrl, cluster, retentionMs, openFiles, execArgv, logLevel = 'info' } = {}) {
  const directory = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  const config = join(directory, 'sluice.yaml');
  writeFileSync(
    config,
    [
      `server: { port: 0, heartbeatMs: ${heartbeatMs}, drainTimeoutMs: 1000 }`,
      `log: { level: ${logLevel} }`,
      'auth: { mode: keys }',
      `store: { url: "${storeUrl ?? `sqlite:${join(directory, 'sluice.db')}`}" }`,
      ...(cluster ? [`cluster: { redisUrl: "${cluster.redisUrl}", nodeId: ${cluster.nodeId}, keyPrefix: "${cluster.keyPrefix}"${cluster.logFlushMs !== undefined ? `, logFlushMs: ${cluster.logFlushMs}` : ''} }`] : []),
      ...(retentionMs ? [`generations: { retentionMs: ${retentionMs} }`] : []),
      'providers:',
      // Enough upstream connections for the 9000-stream hold.
      `  up: { type: openai, baseUrl: "${upstreamUrl}/v1", apiKey: ${benchKey}, maxConnections: 12000 }`,
      'models:',
      '  bench-model: { provider: up }',
      '  slow: { provider: up }',
      '  paced: { provider: up }',
    ].join('\n'),
  );
  const target = await startScript('sluice-server.mjs', { SLUICE_CONFIG: config, SLUICE_ADMIN_KEY: benchKey }, { openFiles, execArgv });
  const stop = async () => {
    await target.stop();
    rmSync(directory, { recursive: true, force: true });
  };
  return { ...target, name: 'sluice', directory, stop };
}

/** The nginx.conf for a reverse proxy in `directory` to `upstreamPort`: the reference floor. */
export function nginxConfig(directory, listenPort, upstreamPort) {
  const isRoot = process.getuid?.() === 0;
  return `# Generated by bench/processes.mjs for one benchmark run.
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
${isRoot ? 'user root;\n' : ''}pid ${directory}/nginx.pid;
error_log ${directory}/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path ${directory}/client-body;
  proxy_temp_path ${directory}/proxy;
  fastcgi_temp_path ${directory}/fastcgi;
  uwsgi_temp_path ${directory}/uwsgi;
  scgi_temp_path ${directory}/scgi;
  keepalive_timeout 60s;
  keepalive_requests 1000000;
  upstream mock { server 127.0.0.1:${upstreamPort}; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${listenPort};
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
    }
  }
}
`;
}

/**
 * Starts /usr/sbin/nginx (BENCH_NGINX) as a reverse proxy to the mock upstream, from a generated
 * config in a temp dir, in the foreground (`daemon off`), one worker. Resolves to undefined with a
 * printed reason when nginx is absent or does not start.
 */
export async function startNginx(upstreamUrl) {
  if (!existsSync(nginxPath)) {
    console.warn(`Skipping nginx: ${nginxPath} does not exist (set BENCH_NGINX to its path).`);
    return undefined;
  }
  const directory = mkdtempSync(join(tmpdir(), 'nginx-bench-'));
  chmodSync(directory, 0o755);
  for (const temp of ['client-body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(directory, temp));
  const port = await freePort();
  writeFileSync(join(directory, 'nginx.conf'), nginxConfig(directory, port, Number(new URL(upstreamUrl).port)));
  const child = spawn(nginxPath, ['-p', directory, '-c', join(directory, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  let stderr = '';
  child.stderr.on('data', (text) => (stderr += text));
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + 5000;
  while (performance.now() < deadline && child.exitCode === null) {
    const workers = childPids(child.pid);
    if (workers.length > 0 && (await answers(url))) {
      const pids = () => [child.pid, ...childPids(child.pid)];
      const stop = async () => {
        await stopProcess(child, 5000);
        rmSync(directory, { recursive: true, force: true });
      };
      return { name: 'nginx', url, child, pids, memory: async () => ({ rss: rssBytes(pids()) }), stop };
    }
    await sleep(50);
  }
  await stopProcess(child, 1000);
  const log = existsSync(join(directory, 'error.log')) ? readFileSync(join(directory, 'error.log'), 'utf8') : '';
  console.warn(`Skipping nginx: it did not start: ${(stderr + log).trim().split('\n').slice(-3).join(' | ')}`);
  return undefined;
}

/** Whether something accepts a TCP connection at `url`. */
function answers(url) {
  return new Promise((resolve) => {
    const socket = connect(Number(new URL(url).port), '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
