// The client side of the robustness tests: posts chats to a gateway's OpenAI-compatible route and
// reads the answer (an SSE stream or one JSON body) into plain values to compare exactly.
import type { Dispatcher } from 'undici';

export interface ChatInput {
  /** An alias or provider/model. */
  model: string;
  /** Defaults to true. */
  stream?: boolean;
  /** The one user message; defaults to "hi". */
  content?: string;
  /** Defaults to a 10 s timeout, so a gateway that never answers fails the test instead of hanging it. */
  signal?: AbortSignal;
  /** Extra request headers (Authorization, …). */
  headers?: Record<string, string>;
}

export function chatBody(input: ChatInput): string {
  return JSON.stringify({ model: input.model, stream: input.stream ?? true, messages: [{ role: 'user', content: input.content ?? 'hi' }] });
}

export function postChat(baseUrl: string, input: ChatInput): Promise<Response> {
  return fetch(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...input.headers },
    body: chatBody(input),
    signal: input.signal ?? AbortSignal.timeout(10_000),
  });
}

export interface ParsedStream {
  /** Every `data:` payload, in order. */
  payloads: string[];
  /** The text of every chunk's `delta.content`, joined. */
  content: string;
  /** The `error.code` of the in-band error chunk, if there was one. */
  errorCode: string | undefined;
  /** The stream ended with `data: [DONE]`. */
  done: boolean;
  /** Payloads after the first `[DONE]` or error chunk (there must be none). */
  afterEnd: number;
  /** Every chunk's `id` and `model`. */
  ids: Set<string>;
  models: Set<string>;
}

interface ChunkJson {
  id?: string;
  model?: string;
  choices?: { delta?: { content?: string | null } }[];
  error?: { code?: string };
}

/**
 * Parses an OpenAI-compatible SSE body. Only `data:` lines, blank lines and `:` comments are
 * allowed (the route writes nothing else); anything else throws.
 */
export function parseOpenAiStream(text: string): ParsedStream {
  const parsed: ParsedStream = { payloads: [], content: '', errorCode: undefined, done: false, afterEnd: 0, ids: new Set(), models: new Set() };
  let ended = false;
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    if (!line.startsWith('data: ')) throw new Error(`unexpected SSE line: ${JSON.stringify(line.slice(0, 80))}`);
    const payload = line.slice('data: '.length);
    parsed.payloads.push(payload);
    if (ended) {
      parsed.afterEnd++;
      continue;
    }
    if (payload === '[DONE]') {
      parsed.done = true;
      ended = true;
      continue;
    }
    const chunk = JSON.parse(payload) as ChunkJson;
    if (chunk.error) {
      parsed.errorCode = chunk.error.code;
      ended = true;
      continue;
    }
    if (chunk.id !== undefined) parsed.ids.add(chunk.id);
    if (chunk.model !== undefined) parsed.models.add(chunk.model);
    parsed.content += chunk.choices?.[0]?.delta?.content ?? '';
  }
  return parsed;
}

/** Reads a whole streamed answer. */
export async function readStream(response: Response): Promise<ParsedStream> {
  return parseOpenAiStream(await response.text());
}

export interface TimedPayload {
  /** performance.now() when the client had the whole line. */
  at: number;
  payload: string;
}

/** Reads an SSE body as it arrives, noting when each `data:` payload reached the client. */
export async function readTimedPayloads(response: Response): Promise<TimedPayload[]> {
  const decoder = new TextDecoder();
  const timed: TimedPayload[] = [];
  let pending = '';
  for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(bytes, { stream: true });
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    const at = performance.now();
    for (const line of lines) if (line.startsWith('data: ')) timed.push({ at, payload: line.slice('data: '.length) });
  }
  return timed;
}

export interface ErrorAnswer {
  status: number;
  contentType: string;
  code: string | undefined;
  type: string | undefined;
}

/** Reads a before-first-byte error answer: a status and an OpenAI-shaped JSON body. */
export async function readErrorAnswer(response: Response): Promise<ErrorAnswer> {
  const text = await response.text();
  let body: { error?: { code?: string; type?: string } } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new Error(`expected a JSON error body, got ${JSON.stringify(text.slice(0, 200))}`);
  }
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', code: body.error?.code, type: body.error?.type };
}

/** The message content of a non-streamed chat.completion body. */
export async function readCompletionText(response: Response): Promise<string> {
  const body = (await response.json()) as { choices?: { message?: { content?: string | null } }[] };
  const content = body.choices?.[0]?.message?.content;
  if (typeof content !== 'string') throw new Error(`no message content in ${JSON.stringify(body).slice(0, 200)}`);
  return content;
}

/** undici's request() options for a chat, for clients that need their own dispatcher. */
export function chatRequestOptions(input: ChatInput, dispatcher: Dispatcher): { method: 'POST'; headers: Record<string, string>; body: string; dispatcher: Dispatcher } {
  return { method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody(input), dispatcher };
}
