// The benchmark's upstream: an OpenAI-compatible server that checks the Bearer key and answers
// (a) streams of CHUNKS chat.completion.chunk events as fast as it can, (b) non-streamed
// chat.completion JSON, and (c) for model "slow", a stream that sends one chunk a second and
// stays open, to hold many streams open for the memory measurement; with `max_tokens: n` it ends
// after n of those chunks (finish chunk, then [DONE]), so a held stream can be checked whole;
// (d) for model "paced", a stream of `max_tokens` (default 50) tokens one every BENCH_PACE_MS
// (default 20) ms, as a real model sends them: one token per read.
import { createServer } from 'node:http';

const key = process.env.BENCH_KEY ?? 'sk-bench';
const chunks = Number(process.env.BENCH_CHUNKS ?? 200);
const paceMs = Number(process.env.BENCH_PACE_MS ?? 20);
const base = { id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'bench-model', system_fingerprint: 'fp_bench' };
const frame = (choices, usage) => `data: ${JSON.stringify({ ...base, choices, usage })}\n\n`;

function streamBody(includeUsage) {
  let body = frame([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], null);
  for (let index = 0; index < chunks; index++) body += frame([{ index: 0, delta: { content: `token${index} ` }, logprobs: null, finish_reason: null }], null);
  body += frame([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], null);
  if (includeUsage) body += frame([], { prompt_tokens: 10, completion_tokens: chunks, total_tokens: 10 + chunks });
  return `${body}data: [DONE]\n\n`;
}
// Pre-split into the separate writes a real server makes, one per event.
const streamEvents = { true: streamBody(true).split(/(?<=\n\n)/), false: streamBody(false).split(/(?<=\n\n)/) };
const completion = JSON.stringify({
  id: 'chatcmpl-bench', object: 'chat.completion', created: 1_700_000_000, model: 'bench-model',
  choices: [{ index: 0, message: { role: 'assistant', content: Array.from({ length: chunks }, (_, index) => `token${index} `).join('') }, logprobs: null, finish_reason: 'stop' }],
  usage: { prompt_tokens: 10, completion_tokens: chunks, total_tokens: 10 + chunks },
});

const server = createServer((request, response) => {
  const parts = [];
  request.on('data', (part) => parts.push(part));
  request.on('end', () => {
    if (request.headers.authorization !== `Bearer ${key}`) {
      response.writeHead(401, { 'content-type': 'application/json' });
      response.end('{"error":{"message":"bad key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}');
      return;
    }
    const body = JSON.parse(Buffer.concat(parts).toString());
    if (!body.stream) {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(completion);
      return;
    }
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    if (body.model === 'paced') {
      response.write(frame([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], null));
      const tokens = typeof body.max_tokens === 'number' ? body.max_tokens : 50;
      let sent = 0;
      const timer = setInterval(() => {
        response.write(frame([{ index: 0, delta: { content: `token${sent} ` }, logprobs: null, finish_reason: null }], null));
        if (++sent < tokens) return;
        clearInterval(timer);
        response.end(`${frame([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], null)}data: [DONE]\n\n`);
      }, paceMs);
      response.on('close', () => clearInterval(timer));
      return;
    }
    if (body.model === 'slow') {
      response.write(frame([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], null));
      response.write(frame([{ index: 0, delta: { content: 'first ' }, logprobs: null, finish_reason: null }], null));
      const ticks = typeof body.max_tokens === 'number' ? body.max_tokens : Infinity;
      let sent = 0;
      const timer = setInterval(() => {
        response.write(frame([{ index: 0, delta: { content: 'tick ' }, logprobs: null, finish_reason: null }], null));
        if (++sent < ticks) return;
        clearInterval(timer);
        response.end(`${frame([{ index: 0, delta: {}, logprobs: null, finish_reason: 'length' }], null)}data: [DONE]\n\n`);
      }, 1000);
      response.on('close', () => clearInterval(timer));
      return;
    }
    const events = streamEvents[String(body.stream_options?.include_usage === true)];
    for (const event of events) response.write(event);
    response.end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => process.send?.({ port: server.address().port }));
