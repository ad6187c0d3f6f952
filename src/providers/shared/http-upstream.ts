// The one shell of an HTTP provider's call: send the request, turn an error answer into a
// SluiceError, yield `start`, decode the body into event batches, map transport failures, and
// free the connection on every way out. Each adapter brings only what is its own: the request
// (built and signed), its error body mapping and its decoder.
import type { Dispatcher } from 'undici';
import type { StreamEvent } from '../../contract/stream-event.js';
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
  /** Decodes the body of an accepted response into batches of events, `end` last. */
  decode(response: UpstreamResponse): AsyncIterable<readonly StreamEvent[]>;
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
 * Runs one upstream call as an adapter's `stream`. Failures are thrown as SluiceErrors (an abort
 * rethrows the signal's reason); nothing is yielded before the upstream accepted the request.
 */
export async function* streamHttpUpstream(call: HttpUpstreamCall): AsyncGenerator<readonly StreamEvent[]> {
  const { provider, signal } = call;
  const headers = call.traceparent === undefined ? call.request.headers : { ...call.request.headers, traceparent: call.traceparent };
  const response = await sendUpstream({ ...call.request, headers, signal, dispatcher: call.dispatcher, provider });
  let failed = false;
  try {
    const readWhole = async (): Promise<WholeResponse> => ({ status: response.statusCode, headers: response.headers, text: await readBodyText(response.body, call.maxWholeBytes) });
    if (response.statusCode !== 200) throw call.mapErrorResponse(await readWhole());
    if (call.wholeAnswer?.when(response)) {
      const whole = await readWhole();
      const error = call.wholeAnswer.errorOf(whole);
      if (error) throw error;
      yield [startEvent(call, response)];
      yield call.wholeAnswer.decode(whole);
      return;
    }
    yield [startEvent(call, response)];
    yield* call.decode(response);
  } catch (error) {
    failed = true;
    throw transportError(error, signal, provider);
  } finally {
    // Ends the upstream request (and frees the pooled socket) on every exit path, early ones
    // included: a consumer that stops iterating lands here through return(). Without a failure
    // or an abort, the consumer stopped because the answer is complete.
    releaseBody(response.body, !failed && !signal.aborted);
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
function releaseBody(body: UpstreamResponse['body'], answered: boolean): void {
  if (body.destroyed) return;
  // Destroying emits undici's abort error; nobody listens for the body's errors any more.
  body.on('error', ignoreError);
  if (!answered) {
    body.destroy();
    return;
  }
  body.resume();
  setImmediate(destroyUnlessEnded, body);
}

function destroyUnlessEnded(body: UpstreamResponse['body']): void {
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
