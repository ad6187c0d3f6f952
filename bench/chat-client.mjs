// One chat answer as the bench's scripts ask for it and read it (run.mjs, compare-builds.mjs,
// latency-pairs.mjs, profile.mjs): the OpenAI route or Sluice's own API, streamed or not, read to
// its last byte and checked whole, with the times its head, its first body bytes and its last
// byte came. One client for all of them, so that what one script measures is what another does.
import { request } from 'undici';
import { benchKey as key } from './processes.mjs';

export const messages = [{ role: 'user', content: 'Benchmark me.' }];

/**
 * Sends one chat request to `baseUrl` through `dispatcher` and reads the answer to its end.
 * `native` asks POST /api/chat (`Accept: text/event-stream` when `stream`, else JSON: a resumable
 * generation) instead of /v1/chat/completions; `paced` (native only) asks the mock upstream's
 * paced stream of `pacedTokens` tokens, one per read. Throws unless the answer is a 200 holding
 * its last token and, when streamed, its end. Returns ms from sending to the head, the first body
 * bytes and the last byte.
 */
export async function chat(baseUrl, { dispatcher, stream = true, native = false, paced = false, pacedTokens = 50 } = {}) {
  const sentAt = performance.now();
  const nativeBody = paced ? { model: 'paced', message: 'Benchmark me.', params: { max_tokens: pacedTokens } } : { model: 'bench-model', message: 'Benchmark me.' };
  const response = await request(`${baseUrl}${native ? '/api/chat' : '/v1/chat/completions'}`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...(native ? { accept: stream ? 'text/event-stream' : 'application/json' } : {}) },
    body: JSON.stringify(native ? nativeBody : { model: 'bench-model', stream, messages }),
  });
  const headAt = performance.now();
  let firstAt;
  let text = '';
  for await (const chunk of response.body) {
    firstAt ??= performance.now();
    text += chunk.toString();
  }
  const lastAt = performance.now();
  if (response.statusCode !== 200) throw new Error(`${baseUrl}: status ${response.statusCode}: ${text.slice(0, 200)}`);
  const ended = !stream || text.includes(native ? 'event: done' : 'data: [DONE]');
  if (!ended || !text.includes(paced ? `token${pacedTokens - 1} ` : 'token199 ')) throw new Error(`${baseUrl}: incomplete answer`);
  return { headMs: headAt - sentAt, firstByteMs: firstAt - sentAt, totalMs: lastAt - sentAt };
}
