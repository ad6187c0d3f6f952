// The one shell of an HTTP provider's call: send the request, turn an error answer into a
// SluiceError, push `start`, decode the body's reads into event batches as they arrive, map
// transport failures, and free the connection on every way out. Each adapter brings only what is its own: the request
// (built and signed), its error body mapping and its decoder.
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { EventBatch, EventSink, PushedEvents } from '../../contract/provider.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { SluiceError } from '../../errors/sluice-error.js';
import type { BodyDecoder } from './body-decoder.js';
import { readBodyText, sendUpstream, transportError, type UpstreamResponse } from './http-client.js';

/** A request as an adapter builds it; it is always POSTed. */
export interface OutboundRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** A response read whole, for error mapping. */
export interface WholeResponse {
  status: number;
  headers: UpstreamResponse['headers'];
  text: string;
}

export interface HttpUpstreamCall {
  /** The provider id, for errors. */
  provider: string;
  dispatcher: Dispatcher;
  /** The generation's signal: aborting it ends the upstream request at once. */
  signal: AbortSignal;
  request: OutboundRequest;
  /** Sent as the `traceparent` header when the request is traced (CallContext.traceparent). */
  traceparent: string | undefined;
  /** `start.upstreamModel`. */
  upstreamModel: string;
  /** Upstream response headers (lowercase names) copied into `start.responseHeaders`; absent: none. */
  passHeaders?: readonly string[];
  /** Turns a response whose status is not 200, its body read as text, into the error to throw. */
  mapErrorResponse(response: WholeResponse): Error;
  /**
   * How the body of an accepted response is read: a decoder for a streamed body (its reads decoded
   * as they arrive), or the events of a body read whole (`end` last either way).
   */
  decode(response: UpstreamResponse): BodyDecoder | Promise<EventBatch>;
  /** How much of a body read whole (an error, or a wholeAnswer) is kept: 64 KiB when absent; the rest is discarded. */
  maxWholeBytes?: number;
  /**
   * For upstreams that report errors with HTTP 200 (Qianfan): the 200 responses to read whole
   * before `start`, so an error in them is thrown before anything is yielded. `errorOf` returns
   * that error, if any; otherwise `decode` turns the text into the answer's events.
   */
  wholeAnswer?: {
    when(response: UpstreamResponse): boolean;
    errorOf(response: WholeResponse): Error | undefined;
    decode(response: WholeResponse): readonly StreamEvent[];
  };
}

/**
 * Runs one upstream call as an adapter's `stream`, in the push form (decision 0034): `pushTo`
 * sends the request, and the body's reads are decoded and pushed to the sink as they arrive.
 * Failures go to the sink as SluiceErrors (an abort as the signal's reason); nothing is pushed
 * before the upstream accepted the request.
 */
export function streamHttpUpstream(call: HttpUpstreamCall): PushedEvents {
  return new HttpUpstream(call);
}

class HttpUpstream implements PushedEvents {
  readonly #call: HttpUpstreamCall;

  constructor(call: HttpUpstreamCall) {
    this.#call = call;
  }

  pushTo(sink: EventSink): void {
    void this.#send(sink);
  }

  /** Waits for the response head (and a body read whole); a streamed body is then read by BodyPush, and this returns. */
  async #send(sink: EventSink): Promise<void> {
    const call = this.#call;
    const { provider, signal } = call;
    const headers = call.traceparent === undefined ? call.request.headers : { ...call.request.headers, traceparent: call.traceparent };
    let response: UpstreamResponse;
    try {
      response = await sendUpstream({ ...call.request, headers, signal, dispatcher: call.dispatcher, provider });
    } catch (error) {
      sink.fail(error);
      return;
    }
    try {
      if (response.statusCode !== 200) throw call.mapErrorResponse(await readWhole(response, call.maxWholeBytes));
      if (call.wholeAnswer?.when(response)) {
        const whole = await readWhole(response, call.maxWholeBytes);
        const error = call.wholeAnswer.errorOf(whole);
        if (error) throw error;
        signal.throwIfAborted();
        releaseBody(response.body, true);
        sink.events([startEvent(call, response)]);
        sink.events(call.wholeAnswer.decode(whole));
        sink.end();
        return;
      }
      sink.events([startEvent(call, response)]);
      // The sink may have stopped the call on `start`; after an abort only the failure follows.
      signal.throwIfAborted();
      const decoded = call.decode(response);
      if (decoded instanceof Promise) {
        const events = await decoded;
        signal.throwIfAborted();
        releaseBody(response.body, true);
        sink.events(events);
        sink.end();
        return;
      }
      pushBody(response.body, decoded, sink, signal, provider);
    } catch (error) {
      releaseBody(response.body, false);
      sink.fail(transportError(error, signal, provider));
    }
  }
}

async function readWhole(response: UpstreamResponse, maxBytes: number | undefined): Promise<WholeResponse> {
  return { status: response.statusCode, headers: response.headers, text: await readBodyText(response.body, maxBytes) };
}

/**
 * Reads a streamed body in flowing mode, decoding each chunk as it arrives and pushing the events
 * of one socket read to the sink as one batch. Ends the body on every way out (releaseBody).
 * Exported for the decoders' tests, which replay recorded reads through it.
 */
export function pushBody(body: Readable, decoder: BodyDecoder, sink: EventSink, signal: AbortSignal, provider: string): void {
  new BodyPush(body, decoder, sink, signal, provider).start();
}

class BodyPush {
  readonly #body: Readable;
  readonly #decoder: BodyDecoder;
  readonly #sink: EventSink;
  readonly #signal: AbortSignal;
  readonly #provider: string;
  #stopped = false;
  /** A flush of the current read's events is queued (#onData). */
  #flushQueued = false;

  constructor(body: Readable, decoder: BodyDecoder, sink: EventSink, signal: AbortSignal, provider: string) {
    this.#body = body;
    this.#decoder = decoder;
    this.#sink = sink;
    this.#signal = signal;
    this.#provider = provider;
  }

  start(): void {
    this.#body.on('error', this.#onError);
    this.#body.on('end', this.#onEnd);
    this.#body.on('data', this.#onData);
  }

  readonly #onData = (bytes: Buffer): void => {
    if (this.#stopped) return;
    // A destroyed body still hands over what it had buffered: after an abort, nothing more is decoded.
    if (this.#signal.aborted) {
      this.#onError(this.#signal.reason);
      return;
    }
    const decoder = this.#decoder;
    let failure: unknown;
    try {
      decoder.read(bytes);
      if (decoder.done) decoder.finish();
    } catch (error) {
      failure = this.#failureOf(error);
    }
    if (failure === undefined && !decoder.done) {
      // undici hands over the chunks of one socket read as one 'data' each, within one turn: their
      // events leave together, as one batch, once that turn's callbacks are through.
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        queueMicrotask(this.#flushRead);
      }
      return;
    }
    this.#finish(failure);
  };

  readonly #flushRead = (): void => {
    this.#flushQueued = false;
    if (!this.#stopped) this.#flush();
  };

  readonly #onEnd = (): void => {
    if (this.#stopped) return;
    if (this.#signal.aborted) {
      this.#onError(this.#signal.reason);
      return;
    }
    let failure: unknown;
    try {
      this.#decoder.finish();
    } catch (error) {
      failure = this.#failureOf(error);
    }
    this.#finish(failure);
  };

  readonly #onError = (error: unknown): void => {
    if (this.#stopped) return;
    this.#stop(false);
    this.#sink.fail(transportError(error, this.#signal, this.#provider));
  };

  #failureOf(error: unknown): unknown {
    return transportError(error instanceof Error ? error : new SluiceError('internal_error', { cause: error }), this.#signal, this.#provider);
  }

  /** Pushes what the decoder has. */
  #flush(): void {
    const events = this.#decoder.take();
    if (events !== undefined) this.#sink.events(events);
  }

  /**
   * The answer is complete, or failed: what was decoded goes first (what arrived before a failure
   * in the same read still reaches the client), then the end or the failure.
   */
  #finish(failure: unknown): void {
    this.#stop(failure === undefined);
    this.#flush();
    if (failure !== undefined) this.#sink.fail(failure);
    else this.#sink.end();
  }

  /** No more reads: the listeners go, and the body is ended (answered: let run to its end in this turn). */
  #stop(answered: boolean): void {
    this.#stopped = true;
    const body = this.#body;
    body.off('data', this.#onData);
    body.off('end', this.#onEnd);
    // releaseBody's listener takes over the body's errors before this one goes.
    releaseBody(body, answered && !this.#signal.aborted);
    body.off('error', this.#onError);
  }
}

/**
 * Ends a body nobody reads any more. After a complete answer the upstream has usually sent its
 * last bytes already (`[DONE]` and the end of the chunked body often come in one read), so the
 * body is let run to its end within this turn of the event loop: destroying a body that has not
 * emitted 'end' makes Node and undici build an abort error with a stack trace, for every stream
 * (decision 0023). A body still going after that turn (an upstream that keeps talking after its
 * answer) is destroyed, as is every body left early (cancelled, timed out, failed).
 */
function releaseBody(body: Readable, answered: boolean): void {
  // Destroying emits undici's abort error; nobody listens for the body's errors any more.
  body.on('error', ignoreError);
  if (body.destroyed) return;
  if (!answered) {
    body.destroy();
    return;
  }
  body.resume();
  setImmediate(destroyUnlessEnded, body);
}

function destroyUnlessEnded(body: Readable): void {
  if (!body.readableEnded && !body.destroyed) body.destroy();
}

function ignoreError(): void {}

function startEvent(call: HttpUpstreamCall, response: UpstreamResponse): StreamEvent {
  if (call.passHeaders === undefined) return { type: 'start', upstreamModel: call.upstreamModel };
  const responseHeaders: Record<string, string> = {};
  for (const name of call.passHeaders) {
    const value = response.headers[name];
    if (typeof value === 'string') responseHeaders[name] = value;
  }
  return { type: 'start', upstreamModel: call.upstreamModel, responseHeaders };
}
