// The lean Node relay, the floor any Node gateway pays (issue 15): node:http in front, one undici
// Pool to the upstream behind, `pool.request(...)`, and the upstream's bytes piped through
// unparsed with its status and content-type. No auth, no parsing, no accounting.
import { createServer } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Pool } from 'undici';
import { answerMemoryRequests } from './memory-probe.mjs';

const upstream = new URL(process.env.UPSTREAM_URL ?? 'http://127.0.0.1:8080/v1');
const key = process.env.BENCH_KEY ?? 'sk-bench';
// No connection cap: the held-streams measure keeps thousands of upstream streams open at once.
const pool = new Pool(upstream.origin, { keepAliveTimeout: 60_000, pipelining: 1 });
const path = `${upstream.pathname.replace(/\/$/, '')}/chat/completions`;

const server = createServer((request, response) => {
  // The request body is passed on as a stream, as the answer is: nothing is buffered.
  pool
    .request({ method: 'POST', path, headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: request })
    .then(async (answer) => {
      response.writeHead(answer.statusCode, { 'content-type': answer.headers['content-type'] ?? 'application/json', 'cache-control': 'no-cache' });
      await pipeline(answer.body, response);
    })
    .catch(() => response.destroy());
});
server.keepAliveTimeout = 60_000;
answerMemoryRequests();
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => process.send?.({ port: server.address().port }));
