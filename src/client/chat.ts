// One chat as an async iterable of ChatEvent: POST /api/chat read as SSE, and — when the stream
// drops (a network error, or a body that ends before `done` or `error`) — GET
// /api/generations/:id/events with Last-Event-ID after backoff, so the caller sees every event
// exactly once however often the connection breaks. The same machinery resumes a generation from
// a stored event id (after a page reload).
import { backoffDelayMs, sleep } from './backoff.js';
import { errorFromResponse, SluiceClientError } from './errors.js';
import { parseChatEventId, protocolError, toChatEvent, type ChatEvent } from './events.js';
import { isRetryableStatus, requestJson, send, type ClientContext } from './http.js';
import { readServerSentEvents } from './server-sent-events.js';

/** What `chat()` sends: the body of POST /api/chat (docs/native-api.md), plus a signal. */
export interface ChatInput {
  /** One new user message (or send `messages`). */
  message?: string;
  /** A whole conversation in OpenAI's format, instead of `message` (not with `conversationId`). */
  messages?: unknown[];
  /** An alias or `provider/model`; the gateway's `defaultModel` when absent. */
  model?: string;
  /** Stores both turns in this conversation, and sends its history first. */
  conversationId?: string;
  /** A system prompt, sent first and not stored. */
  system?: string;
  /** Sampling fields in OpenAI's names (`temperature`, `max_tokens`, …). */
  params?: Record<string, unknown>;
  /**
   * Aborting stops reading: the iteration ends quietly, without an error. It does NOT cancel the
   * generation — the gateway keeps it running for `generations.resumeGraceMs` so that `resume()`
   * can pick it up; call `cancel()` to stop it.
   */
  signal?: AbortSignal;
}

export interface ResumeInput {
  /** An event id seen before (`ChatStream.lastEventId`, `<generationId>:<seq>`); events after it follow. */
  lastEventId: string;
  /** As for chat(): aborting stops reading, not the generation. */
  signal?: AbortSignal;
}

/**
 * A chat's events, in order, each once. Iterate it once (a second iteration throws TypeError),
 * or call `text()`. An HTTP error before the stream throws SluiceClientError from the iterator;
 * an error in the stream is its last event, `type: 'error'`.
 */
export interface ChatStream extends AsyncIterable<ChatEvent> {
  /** The generation's id: known from the response head or the `meta` event on (at once for resume()). */
  readonly generationId: string | undefined;
  /** The id of the last event seen; store it to `resume()` after a reload. */
  readonly lastEventId: string | undefined;
  /**
   * Stops the generation (POST /api/generations/:id/cancel); the iteration then ends with an
   * `error` event of code `cancelled`. Before the gateway has named the generation, the request is
   * abandoned instead and the iteration ends with a local `cancelled` error event (no `id`); a
   * generation the gateway had started meanwhile then stops after its resume grace. Rejects with
   * SluiceClientError when the cancel request fails. Does nothing once the stream has ended.
   */
  cancel(): Promise<void>;
  /**
   * Consumes the stream and resolves with the whole answer text. Rejects with SluiceClientError
   * (code from the `error` event, e.g. `cancelled`) when the answer failed, and like the iterator
   * otherwise. An aborted signal resolves with the text read until then.
   */
  text(): Promise<string>;
}

export type ChatStart = { kind: 'chat'; body: Record<string, unknown> } | { kind: 'resume'; lastEventId: string };

export function createChatStream(context: ClientContext, start: ChatStart, signal: AbortSignal | undefined): ChatStream {
  return new SluiceChatStream(context, start, signal);
}

class SluiceChatStream implements ChatStream {
  readonly #context: ClientContext;
  readonly #start: ChatStart;
  /** Aborts the request or read in progress and any backoff sleep: the caller's signal, or cancel() before an id. */
  readonly #controller = new AbortController();
  #generationId: string | undefined;
  #lastEventId: string | undefined;
  /** The seq of the last event yielded (-1 before any): a repeated event is never yielded twice. */
  #lastSeq = -1;
  #iterated = false;
  #ended = false;
  /** cancel() came before the generation had an id, so the request was abandoned. */
  #abandoned = false;

  constructor(context: ClientContext, start: ChatStart, signal: AbortSignal | undefined) {
    this.#context = context;
    this.#start = start;
    if (start.kind === 'resume') {
      const parsed = parseChatEventId(start.lastEventId);
      if (parsed) {
        this.#generationId = parsed.generationId;
        this.#lastEventId = start.lastEventId;
        this.#lastSeq = parsed.seq;
      }
    }
    if (signal?.aborted === true) this.#controller.abort();
    else signal?.addEventListener('abort', () => this.#controller.abort(), { once: true });
  }

  get generationId(): string | undefined {
    return this.#generationId;
  }

  get lastEventId(): string | undefined {
    return this.#lastEventId;
  }

  [Symbol.asyncIterator](): AsyncIterator<ChatEvent> {
    if (this.#iterated) throw new TypeError('A ChatStream can be iterated only once.');
    this.#iterated = true;
    return this.#run();
  }

  async cancel(): Promise<void> {
    if (this.#ended) return;
    const id = this.#generationId;
    if (id === undefined) {
      this.#abandoned = true;
      this.#controller.abort();
      return;
    }
    await requestJson(this.#context, 'POST', `/api/generations/${encodeURIComponent(id)}/cancel`);
  }

  async text(): Promise<string> {
    let text = '';
    for await (const event of this) {
      if (event.type === 'delta' && event.text !== undefined) text += event.text;
      if (event.type === 'error') throw new SluiceClientError(event.code, event.message);
    }
    return text;
  }

  async *#run(): AsyncGenerator<ChatEvent, void, undefined> {
    try {
      if (this.#start.kind === 'resume' && this.#generationId === undefined) {
        throw new SluiceClientError('invalid_request', `resume(): lastEventId "${this.#start.lastEventId.slice(0, 80)}" is not an event id of the native API; ids look like <generationId>:<seq>.`);
      }
      yield* this.#follow();
    } finally {
      this.#ended = true;
    }
  }

  async *#follow(): AsyncGenerator<ChatEvent, void, undefined> {
    const signal = this.#controller.signal;
    /** Reconnections in a row that brought no new event. */
    let failures = 0;
    let posting = this.#start.kind === 'chat';
    for (;;) {
      if (signal.aborted) return yield* this.#endAborted();
      let response: Response;
      try {
        response = posting ? await this.#post(signal) : await this.#attach(signal);
      } catch (error) {
        if (signal.aborted) return yield* this.#endAborted();
        // The first POST is never repeated: it might have started a generation already.
        if (posting) throw error;
        failures = await this.#pause(failures + 1, error);
        continue;
      }
      const wasPost = posting;
      posting = false;
      if (response.status === 204) {
        // The generation is complete and everything of it was seen (it ended before a reload, say).
        await response.body?.cancel();
        return;
      }
      if (!response.ok) {
        const error = await errorFromResponse(response, wasPost ? 'POST /api/chat' : `GET /api/generations/${this.#generationId ?? ''}/events`);
        if (wasPost || !isRetryableStatus(response.status)) throw error;
        failures = await this.#pause(failures + 1, error);
        continue;
      }
      // The head names the generation before any event: a drop before `meta` stays resumable
      // (cross-origin, only if the gateway exposes the header).
      this.#generationId ??= response.headers.get('x-sluice-generation-id') ?? undefined;
      if (!response.body) throw protocolError('a 200 answer without a body');
      let cause: unknown;
      try {
        for await (const message of readServerSentEvents(response.body)) {
          const id = message.id;
          if (id === undefined) continue;
          const parsed = parseChatEventId(id);
          if (!parsed) throw protocolError(`the event id "${id.slice(0, 80)}" is not <generationId>:<seq>`);
          if (this.#generationId !== undefined && parsed.generationId !== this.#generationId) throw protocolError(`an event of generation ${parsed.generationId} in the stream of ${this.#generationId}`);
          if (parsed.seq <= this.#lastSeq) continue;
          const event = toChatEvent(message.event ?? 'message', id, message.data);
          this.#generationId = parsed.generationId;
          this.#lastSeq = parsed.seq;
          this.#lastEventId = id;
          failures = 0;
          if (!event) continue;
          yield event;
          if (event.type === 'done' || event.type === 'error') return;
        }
      } catch (error) {
        if (error instanceof SluiceClientError) throw error;
        cause = error;
      }
      if (signal.aborted) return yield* this.#endAborted();
      if (this.#generationId === undefined) {
        throw new SluiceClientError('stream_interrupted', 'The chat stream dropped before the gateway named the generation, so it cannot be resumed; send the chat again.', cause !== undefined ? { cause } : {});
      }
      failures = await this.#pause(failures + 1, cause);
    }
  }

  async #post(signal: AbortSignal): Promise<Response> {
    const body = this.#start.kind === 'chat' ? this.#start.body : {};
    return send(this.#context, 'POST', '/api/chat', { headers: { 'content-type': 'application/json', accept: 'text/event-stream' }, body: JSON.stringify(body), signal });
  }

  /** Attaches after the last event seen (from the start when none was, i.e. a drop before `meta`). */
  async #attach(signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.#lastEventId !== undefined) headers['last-event-id'] = this.#lastEventId;
    return send(this.#context, 'GET', `/api/generations/${encodeURIComponent(this.#generationId ?? '')}/events`, { headers, signal });
  }

  /** Waits before reconnection `attempt`; throws `stream_interrupted` once attempts run out. Returns `attempt`. */
  async #pause(attempt: number, cause: unknown): Promise<number> {
    const retry = this.#context.retry;
    if (attempt > retry.maxAttempts) {
      throw new SluiceClientError(
        'stream_interrupted',
        `The stream of generation ${this.#generationId ?? '?'} dropped and ${retry.maxAttempts.toString()} reconnections in a row failed; call resume({ lastEventId: '${this.#lastEventId ?? ''}' }) later, while the gateway still holds it.`,
        cause !== undefined ? { cause } : {},
      );
    }
    await sleep(backoffDelayMs(attempt, retry), this.#controller.signal);
    return attempt;
  }

  /** The end after an abort: quiet for the caller's signal, a local `cancelled` event for cancel(). */
  async *#endAborted(): AsyncGenerator<ChatEvent, void, undefined> {
    if (this.#abandoned) yield { type: 'error', code: 'cancelled', message: 'The chat was cancelled before the gateway started streaming it.', retryable: false };
  }
}
