// The one shell of an HTTP provider's call: send the request, turn an error answer into a
// SluiceError, push `start`, decode the body's reads into event batches as they arrive, map
// transport failures, and free the connection on every way out. Each adapter brings only what is
// its own: the request (built and signed), its error body mapping and its decoder.
//
// The call is one handler of undici's dispatch API, not `request`: no promise, AsyncResource,
// body stream or abort listener of undici's own per call; of the shell, a held stream keeps this
// object and its decoder only (docs/decisions/0037-one-dispatch-handler-per-upstream-call.md).
import type { Dispatcher } from 'undici';
import type { Cancellation, EventBatch, EventSink, PushedEvents } from '../../contract/provider.js';
import type { StreamEvent } from '../../contract/stream-event.js';
import { SluiceError } from '../../errors/sluice-error.js';
import type { BodyDecoder } from './body-decoder.js';
import { originAndPath, readBodyText, transportError } from './http-client.js';

/** A request as an adapter builds it; it is always POSTed. */
export interface OutboundRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** Response headers, names in lowercase; a repeated header is an array. */
export type UpstreamHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * A response as the shell hands it to an adapter (`decode`, `wholeAnswer.when`): its status, its
 * headers, and its body as an async iterable of its reads. The body is there for a `decode` that
 * reads it whole (it returns a promise); a `decode` that returns a BodyDecoder is given the reads
 * instead, and the iterable then holds nothing.
 */
export interface UpstreamAnswer {
  readonly statusCode: number;
  readonly headers: UpstreamHeaders;
  readonly body: AsyncIterable<Uint8Array>;
}

/** A response read whole, for error mapping. */
export interface WholeResponse {
  status: number;
  headers: UpstreamHeaders;
  text: string;
}

export interface HttpUpstreamCall {
  /** The provider id, for errors. */
  provider: string;
  dispatcher: Dispatcher;
  /** The generation's cancellation (`cancellationOf(context)`): aborting it ends the upstream request at once. */
  cancellation: Cancellation;
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
  decode(response: UpstreamAnswer): BodyDecoder | Promise<EventBatch>;
  /** How much of a body read whole (an error, or a wholeAnswer) is kept: 64 KiB when absent; the rest is discarded. */
  maxWholeBytes?: number;
  /**
   * For upstreams that report errors with HTTP 200 (Qianfan): the 200 responses to read whole
   * before `start`, so an error in them is thrown before anything is yielded. `errorOf` returns
   * that error, if any; otherwise `decode` turns the text into the answer's events.
   */
  wholeAnswer?: {
    when(response: UpstreamAnswer): boolean;
    errorOf(response: WholeResponse): Error | undefined;
    decode(response: WholeResponse): readonly StreamEvent[];
  };
}

/**
 * Runs one upstream call as an adapter's `stream`, in the push form (decision 0034): `pushTo`
 * sends the request, and the body's reads are decoded and pushed to the sink as they arrive.
 * Failures go to the sink as SluiceErrors (an abort as the cancellation's reason); nothing is pushed
 * before the upstream accepted the request.
 */
export function streamHttpUpstream(call: HttpUpstreamCall): PushedEvents {
  return { pushTo: (sink) => new HttpUpstream(call, sink).send() };
}

/** What the shell does with the body's reads, decided once the response's head is in. */
const enum Reading {
  /** No head yet. */
  Head,
  /** Each read goes to the adapter's decoder (#decoded), and its events to the sink. */
  Decoded,
  /** The reads gather in `#whole`, for a body read whole (an error, a wholeAnswer, a promise decode). */
  Whole,
  /** The answer is complete: what still comes is let run to its end (#complete). */
  Draining,
  /** Failed or aborted: nothing more is read. */
  Stopped,
}

/**
 * One upstream call: undici's dispatch handler (https://undici.nodejs.org/#/docs/api/Dispatcher?id=dispatcherdispatchoptions-handler)
 * and the call's state. The generation's cancellation aborts it through the one listener added here.
 */
class HttpUpstream implements Dispatcher.DispatchHandler {
  /**
   * Let go of once the response's head is in: it holds the request (the prompt, the credentials),
   * which a held stream must not keep (decision 0032).
   */
  #call: HttpUpstreamCall | undefined;
  readonly #cancellation: Cancellation;
  /** Stops listening to the cancellation; set while the call may still be aborted. */
  #stopListening: (() => void) | undefined;
  readonly #provider: string;
  readonly #sink: EventSink;
  #reading = Reading.Head;
  #controller: Dispatcher.DispatchController | undefined;
  #decoded: DecodedBody | undefined;
  #whole: BodyReads | undefined;
  /** The response's end came (or it failed, or was aborted): nothing is left to let run. */
  #responseEnded = false;

  constructor(call: HttpUpstreamCall, sink: EventSink) {
    this.#call = call;
    this.#cancellation = call.cancellation;
    this.#provider = call.provider;
    this.#sink = sink;
  }

  send(): void {
    const call = this.#call;
    if (call === undefined) return;
    const { cancellation } = call;
    if (cancellation.aborted) {
      this.#sink.fail(cancellation.reason);
      return;
    }
    this.#stopListening = cancellation.onAbort(this.#onAbort);
    try {
      const { origin, path } = originAndPath(call.request.url);
      const headers = call.traceparent === undefined ? call.request.headers : { ...call.request.headers, traceparent: call.traceparent };
      // undici's own dispatchers hand a failure here (an invalid header, say) to onResponseError,
      // as a connection failure; a URL that does not parse, or another dispatcher, may throw.
      call.dispatcher.dispatch({ origin, path, method: 'POST', headers, body: call.request.body }, this);
    } catch (error) {
      this.#fail(error);
    }
  }

  readonly #onAbort = (): void => {
    this.#controller?.abort(abortReason(this.#cancellation));
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // Aborted while the request waited for a connection.
    if (this.#cancellation.aborted) controller.abort(abortReason(this.#cancellation));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: UpstreamHeaders): void {
    // undici keeps the head's raw form on the controller for handlers that want it, and with it the
    // socket read it came in: a held stream would keep that for its whole life.
    controller.rawHeaders = null;
    const call = this.#call;
    // An informational answer (103 Early Hints): the response proper follows.
    if (statusCode < 200 || call === undefined) return;
    this.#call = undefined;
    const answer = new Answer(statusCode, headers);
    try {
      if (statusCode !== 200) {
        this.#readWhole(answer, call.maxWholeBytes, (whole) => {
          throw call.mapErrorResponse(whole);
        });
        return;
      }
      if (call.wholeAnswer?.when(answer)) {
        const wholeAnswer = call.wholeAnswer;
        this.#readWhole(answer, call.maxWholeBytes, (whole) => {
          const error = wholeAnswer.errorOf(whole);
          if (error) throw error;
          throwIfAborted(call.cancellation);
          this.#sink.events([startEvent(call, answer)]);
          this.#sink.events(wholeAnswer.decode(whole));
        });
        return;
      }
      this.#sink.events([startEvent(call, answer)]);
      // The sink may have stopped the call on `start`; after an abort only the failure follows.
      throwIfAborted(call.cancellation);
      // No read comes before this returns: the body's reads go where `decode` chose.
      const decoded = call.decode(answer);
      if (decoded instanceof Promise) {
        this.#reading = Reading.Whole;
        this.#whole = answer.reads;
        decoded
          .then((events) => {
            if (this.#reading === Reading.Stopped) return;
            throwIfAborted(call.cancellation);
            this.#complete();
            this.#sink.events(events);
            this.#sink.end();
          })
          .catch((error: unknown) => this.#fail(error));
        return;
      }
      answer.endUnreadBody();
      this.#reading = Reading.Decoded;
      this.#decoded = new DecodedBody(decoded, this.#sink, call.cancellation, call.provider, this);
    } catch (error) {
      this.#fail(error);
    }
  }

  /** Gathers the body (at most maxWholeBytes of it is kept), then hands it, as text, to `then`, which may throw. */
  #readWhole(answer: Answer, maxBytes: number | undefined, then: (whole: WholeResponse) => void): void {
    this.#reading = Reading.Whole;
    this.#whole = answer.reads;
    readBodyText(answer.reads, maxBytes)
      .then((text) => {
        if (this.#reading === Reading.Stopped) return;
        then({ status: answer.statusCode, headers: answer.headers, text });
        this.#complete();
        this.#sink.end();
      })
      .catch((error: unknown) => this.#fail(error));
  }

  onResponseData(_controller: Dispatcher.DispatchController | undefined, bytes: Buffer): void {
    if (this.#reading === Reading.Decoded) this.#decoded?.read(bytes);
    else if (this.#reading === Reading.Whole) this.#whole?.push(bytes);
  }

  onResponseEnd(): void {
    this.#responseEnded = true;
    this.#removeAbortListener();
    if (this.#reading === Reading.Whole) this.#whole?.end();
    else if (this.#reading === Reading.Decoded) this.#decoded?.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    this.#responseEnded = true;
    this.#removeAbortListener();
    if (this.#reading === Reading.Head) this.#fail(error);
    else if (this.#reading === Reading.Decoded) this.#decoded?.fail(error);
    // The read of the whole body fails with it, and its catch fails the call.
    else if (this.#reading === Reading.Whole) this.#whole?.fail(error);
    // Draining or stopped: the sink has had the call's outcome (this is the abort that ended it).
  }

  /** DecodedBody: the body is through, complete (its end was pushed) or failed (its failure was). */
  bodyStopped(answered: boolean): void {
    this.#decoded = undefined;
    if (answered) {
      this.#complete();
      return;
    }
    this.#reading = Reading.Stopped;
    this.#abortUnlessEnded();
  }

  /**
   * The answer is complete. The upstream has usually sent its last bytes already (`[DONE]` and
   * the end of the chunked body often come in one read), so the rest of the response is let run
   * to its end within this turn of the event loop, and the connection stays open for the next
   * request: an abort would close it (decision 0023). A response still going after that turn (an
   * upstream that keeps talking after its answer) is aborted.
   */
  #complete(): void {
    this.#reading = Reading.Draining;
    this.#whole = undefined;
    // The end in the same read as the answer's last bytes is handed over before this turn's
    // microtasks run; only a response that did not end with it waits a turn.
    // (Closures made here, not fields: a held stream does not keep them.)
    if (!this.#responseEnded) queueMicrotask(() => this.#waitForEnd());
  }

  #waitForEnd(): void {
    if (!this.#responseEnded) setImmediate(() => this.#abortUnlessEnded());
  }

  /** The call failed before or outside a decoded body: the response is aborted (unless it ended) and the sink told, once. */
  #fail(error: unknown): void {
    if (this.#reading === Reading.Stopped) return;
    this.#reading = Reading.Stopped;
    this.#whole = undefined;
    this.#abortUnlessEnded();
    this.#sink.fail(transportError(error, this.#cancellation, this.#provider));
  }

  #abortUnlessEnded(): void {
    this.#removeAbortListener();
    if (this.#responseEnded) return;
    this.#responseEnded = true;
    // The reason is undici's alone: the sink has had the call's outcome already.
    this.#controller?.abort(new SluiceError('cancelled', { provider: this.#provider, message: 'The upstream response was no longer read.' }));
  }

  #removeAbortListener(): void {
    this.#stopListening?.();
    this.#stopListening = undefined;
  }
}

/** Who reads a DecodedBody's response: told when the body is through. */
interface BodyOwner {
  bodyStopped(answered: boolean): void;
}

/**
 * A streamed body's reads through the adapter's decoder: each read's events are pushed to the sink
 * as one batch, then the end or the failure. Exported for the decoders' tests, which replay recorded
 * reads through it (test/support/pushed-events.ts).
 */
export class DecodedBody {
  readonly #decoder: BodyDecoder;
  readonly #sink: EventSink;
  readonly #cancellation: Cancellation;
  readonly #provider: string;
  /** Told once, when the body is through: `answered` when its end was pushed, not its failure. */
  readonly #owner: BodyOwner | undefined;
  #done = false;
  /** A flush of the current read's events is queued (#read). */
  #flushQueued = false;

  constructor(decoder: BodyDecoder, sink: EventSink, cancellation: Cancellation, provider: string, owner?: BodyOwner) {
    this.#decoder = decoder;
    this.#sink = sink;
    this.#cancellation = cancellation;
    this.#provider = provider;
    this.#owner = owner;
  }

  /**
   * One chunk of the body. undici hands over the chunks of one socket read one by one, within one
   * turn: their events leave together, as one batch, once that turn's callbacks are through.
   */
  read(bytes: Buffer): void {
    if (this.#done) return;
    // A chunk that comes with the abort: nothing more is decoded.
    if (this.#cancellation.aborted) {
      this.fail(this.#cancellation.reason);
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
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        queueMicrotask(this.#flushRead);
      }
      return;
    }
    this.#finish(failure);
  }

  /** The body ended. */
  end(): void {
    if (this.#done) return;
    if (this.#cancellation.aborted) {
      this.fail(this.#cancellation.reason);
      return;
    }
    let failure: unknown;
    try {
      this.#decoder.finish();
    } catch (error) {
      failure = this.#failureOf(error);
    }
    this.#finish(failure);
  }

  /** The body failed (a transport error, or the abort). */
  fail(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#owner?.bodyStopped(false);
    this.#sink.fail(transportError(error, this.#cancellation, this.#provider));
  }

  readonly #flushRead = (): void => {
    this.#flushQueued = false;
    if (!this.#done) this.#flush();
  };

  #failureOf(error: unknown): unknown {
    return transportError(error instanceof Error ? error : new SluiceError('internal_error', { cause: error }), this.#cancellation, this.#provider);
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
    this.#done = true;
    this.#owner?.bodyStopped(failure === undefined && !this.#cancellation.aborted);
    this.#flush();
    if (failure !== undefined) this.#sink.fail(failure);
    else this.#sink.end();
  }
}

/** A cancellation's reason as undici takes it: an Error (the generation's are SluiceErrors). */
function abortReason(cancellation: Cancellation): Error {
  const reason: unknown = cancellation.reason;
  return reason instanceof Error ? reason : new SluiceError('cancelled', { cause: reason });
}

/** AbortSignal's throwIfAborted, for a Cancellation. */
function throwIfAborted(cancellation: Cancellation): void {
  if (cancellation.aborted) throw cancellation.reason;
}

/** A response's head, and its reads for a body read whole (made when first asked for). */
class Answer implements UpstreamAnswer {
  readonly statusCode: number;
  readonly headers: UpstreamHeaders;
  #reads: BodyReads | undefined;

  constructor(statusCode: number, headers: UpstreamHeaders) {
    this.statusCode = statusCode;
    this.headers = headers;
  }

  get reads(): BodyReads {
    return (this.#reads ??= new BodyReads());
  }

  /** The body goes to a decoder: an iterable of it that `decode` took ends empty. */
  endUnreadBody(): void {
    this.#reads?.end();
  }

  get body(): AsyncIterable<Uint8Array> {
    return this.reads;
  }
}

/** The reads of a body read whole, as an async iterable: pushed by the handler, pulled by the reader. */
class BodyReads implements AsyncIterable<Uint8Array> {
  #chunks: Uint8Array[] = [];
  #ended = false;
  #failed = false;
  #error: unknown;
  #wake: (() => void) | undefined;

  push(chunk: Uint8Array): void {
    if (this.#ended) return;
    this.#chunks.push(chunk);
    this.#wakeReader();
  }

  end(): void {
    this.#ended = true;
    this.#wakeReader();
  }

  fail(error: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#failed = true;
    this.#error = error;
    this.#wakeReader();
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      if (this.#chunks.length > 0) {
        const chunks = this.#chunks;
        this.#chunks = [];
        for (const chunk of chunks) yield chunk;
        continue;
      }
      if (this.#failed) throw this.#error;
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }
}

function startEvent(call: HttpUpstreamCall, response: UpstreamAnswer): StreamEvent {
  if (call.passHeaders === undefined) return { type: 'start', upstreamModel: call.upstreamModel };
  const responseHeaders: Record<string, string> = {};
  for (const name of call.passHeaders) {
    const value = response.headers[name];
    if (typeof value === 'string') responseHeaders[name] = value;
  }
  return { type: 'start', upstreamModel: call.upstreamModel, responseHeaders };
}
