// The hand-written relay the issue compares against: node:http in front, global fetch behind,
// every upstream chunk written straight through to the client. No parsing, no accounting.
import { createServer } from 'node:http';
import { answerMemoryRequests } from './memory-probe.mjs';

const upstream = process.env.UPSTREAM_URL;
const key = process.env.BENCH_KEY ?? 'sk-bench';

const server = createServer(async (request, response) => {
  const parts = [];
  for await (const part of request) parts.push(part);
  try {
    const answer = await fetch(`${upstream}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: Buffer.concat(parts),
    });
    response.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json', 'cache-control': 'no-cache' });
    for await (const chunk of answer.body) response.write(chunk);
    response.end();
  } catch {
    response.destroy();
  }
});
server.keepAliveTimeout = 60_000;
answerMemoryRequests();
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => process.send?.({ port: server.address().port }));
