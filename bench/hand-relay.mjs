// The hand-written relay the issue compares against: node:http in front, global fetch behind,
// every upstream chunk written straight through to the client. No parsing, no accounting.
// GET /events is the hand-written counterpart of Sluice's hub stream, for the idle-connection
// memory measure: SSE headers, then a `: ping` line every HEARTBEAT_MS to every open response.
import { createServer } from 'node:http';
import { answerMemoryRequests } from './memory-probe.mjs';

const upstream = process.env.UPSTREAM_URL;
const key = process.env.BENCH_KEY ?? 'sk-bench';
const heartbeatMs = Number(process.env.HEARTBEAT_MS ?? 15_000);

// The least a hand-written hub needs: the open responses in a Set (a push would loop over it)
// and one timer for everyone's heartbeat.
const subscribers = new Set();
setInterval(() => {
  for (const response of subscribers) response.write(': ping\n');
}, heartbeatMs).unref();

const server = createServer(async (request, response) => {
  if (request.method === 'GET' && request.url === '/events') {
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    response.flushHeaders();
    subscribers.add(response);
    response.once('close', () => subscribers.delete(response));
    return;
  }
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
