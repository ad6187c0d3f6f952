// The OpenAI Responses API on Sluice's generation core: POST /v1/responses (streamed or one JSON
// answer, foreground or background), GET /v1/responses/:id (the stored response, or its events
// again with `stream=true&starting_after=N`), DELETE /v1/responses/:id and POST
// /v1/responses/:id/cancel. Same admission, limits, usage rows, cancellation and SSE writer as
// /v1/chat/completions; only the body, the encoder and the stored rows differ.
//
// A background response is a resumable generation kept alive by the route itself (a subscriber
// that leaves when it finishes), so its client may go away and come back on any node: the
// registry finds its log while it runs and for `generations.retentionMs` after, the stored event
// log after that, and the encoder turns either into the same numbered events.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../../config/config.js';
import { SluiceError } from '../../errors/sluice-error.js';
import type { Principal } from '../../contract/principal.js';
import { upstreamUserId } from '../../contract/principal.js';
import { actFor } from '../../auth/authenticate.js';
import type { Metrics } from '../../observability/metrics.js';
import type { GenerationService } from '../../relay/generation-service.js';
import type { Generation, GenerationView } from '../../relay/generation.js';
import type { GenerationRegistry } from '../../relay/generation-registry.js';
import { createFinishedGenerationView } from '../../relay/finished-generation-view.js';
import { createResponsesSseEncoder, responseFromLog } from '../../relay/encoders/responses-events.js';
import { isFinalStatus, type ResponseIdentity } from '../../relay/encoders/responses-object.js';
import type { ResponseRecord, ResponseStore } from '../../store/store.js';
import { readJsonBody } from '../request-body.js';
import { callerOf, recordGeneration, traceOf, type RequestContext } from '../request-context.js';
import { sendError, sendJson } from '../respond.js';
import { respondWhenDone } from '../respond-when-done.js';
import type { RouteSpec } from '../router.js';
import { SseStream } from '../sse/sse-writer.js';
import { relayGeneration } from '../sse/relay-generation.js';
import { createResponseRecords, finishedObject } from './response-records.js';
import { requestEcho, toChatMessages, toChatParams } from './responses-input.js';
import { parseCreateResponseBody, parseRetrieveQuery, type InputItem } from './responses-schema.js';

export interface ResponsesDependencies {
  config: Config;
  generations: GenerationService;
  registry: GenerationRegistry;
  responses: ResponseStore;
  metrics: Metrics;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** A response's outcome could not be stored (logged; the answer itself is not affected). */
  onStoreError: (error: unknown, responseId: string) => void;
}

/** How long POST …/cancel waits for the generation to record its end before answering (ms). */
const cancelWaitMs = 5_000;

export function createResponsesRoutes(dependencies: ResponsesDependencies): RouteSpec[] {
  const { config, generations, registry, metrics, now } = dependencies;
  const records = createResponseRecords({ store: dependencies.responses, now, onStoreError: dependencies.onStoreError });

  function stream(context: RequestContext, response: ServerResponse, generation: GenerationView, identity: ResponseIdentity, startingAfter?: number): void {
    const sse = new SseStream(response, { heartbeatMs: config.server.heartbeatMs, headers: { 'x-request-id': context.requestId } });
    relayGeneration({
      generation,
      sse,
      // Always from the start of the log: sequence numbers are counted from it.
      encode: createResponsesSseEncoder(identity, startingAfter !== undefined ? { startingAfter } : {}),
      maxBufferedBytes: config.server.maxBufferedBytes,
      onErrorBeforeOpen: (error) => sendError(response, error),
      streams: metrics.activeStreams,
    });
  }

  async function create(context: RequestContext, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = parseCreateResponseBody(await readJsonBody(request, config.server.bodyLimitBytes));
    const wantsStream = body.stream === true;
    const background = body.background === true;
    const store = body.store !== false;
    context.model = body.model;
    context.stream = wantsStream;
    // As in chat completions, `user` names the end user: a service credential may act for them.
    const principal: Principal = typeof body.user === 'string' ? actFor(callerOf(context), body.user, 'user') : callerOf(context);
    context.principal = principal;

    const previous = body.previous_response_id != null ? await records.findOwned(principal, body.previous_response_id, { ownerOnly: true, param: 'previous_response_id' }) : undefined;
    if (previous && !isFinalStatus(previous.status)) {
      throw new SluiceError('invalid_request', { param: 'previous_response_id', message: `previous_response_id: response ${previous.id} is still ${previous.status}; continue from it once it has finished.` });
    }
    const items: InputItem[] = [...(previous ? records.continuation(previous) : []), ...body.input];
    const echo = requestEcho(body);
    const userId = upstreamUserId(principal);
    const generation = await generations.start({
      model: body.model,
      request: { messages: toChatMessages(body.instructions, items), params: toChatParams(body, echo.tools), ...(userId !== undefined ? { userId } : {}) },
      // A background response may be streamed again later: ask the upstream for a stream.
      mode: wantsStream || background ? 'stream' : 'complete',
      requestId: context.requestId,
      ...traceOf(context),
      principal,
      route: 'responses',
      // Findable by id (on any node, in cluster mode) for GET ?stream=true and cancel.
      ...(background ? { resumable: true } : {}),
    });
    const identity: ResponseIdentity = { id: `resp_${generation.id}`, createdAt: Math.floor(now() / 1000), model: body.model, background, request: echo };
    recordGeneration(context, generation);
    if (background) keepRunning(generation);
    if (store) {
      try {
        await records.create(identity, generation, principal, items);
      } catch (error) {
        generation.cancel(error instanceof SluiceError ? error : undefined);
        throw error;
      }
    }

    if (wantsStream) {
      stream(context, response, generation, identity);
      return;
    }
    if (background) {
      // Answered at once: the client polls GET /v1/responses/:id, or streams it from there.
      sendJson(response, 200, { ...responseFromLog(identity, generation.events), completed_at: null });
      return;
    }
    await respondWhenDone(generation, response, (events) => finishedObject(responseFromLog(identity, events), now()));
  }

  async function retrieve(context: RequestContext, response: ServerResponse, id: string): Promise<void> {
    const query = parseRetrieveQuery(context.query);
    const record = await records.findOwned(callerOf(context), id);
    context.model = record.model;
    if (query.stream !== 'true') {
      sendJson(response, 200, await currentObject(record));
      return;
    }
    context.stream = true;
    if (!record.background) {
      throw new SluiceError('invalid_request', { param: 'stream', message: `stream: response ${id} was not created with background: true; only background responses can be streamed again.` });
    }
    const identity = records.identityOf(record);
    const found = await registry.find(record.generationId);
    if (found) {
      stream(context, response, found.generation, identity, query.starting_after);
      return;
    }
    // Past the registry's retention: the log stored when it finished gives the same events.
    const events = records.eventsOf(record);
    if (events === undefined) {
      throw new SluiceError('generation_interrupted', { message: `Response ${id} stopped before it finished (the node running it went away); what it produced is in GET /v1/responses/${id}.` });
    }
    stream(context, response, createFinishedGenerationView(record.generationId, events), identity, query.starting_after);
  }

  /** The stored object, or for a background response still running, its live state. */
  async function currentObject(record: ResponseRecord): Promise<unknown> {
    if (record.background && !isFinalStatus(record.status)) {
      const found = await registry.find(record.generationId);
      if (found) return { ...responseFromLog(records.identityOf(record), found.generation.events), completed_at: null };
    }
    return record.response;
  }

  async function cancel(context: RequestContext, response: ServerResponse, id: string): Promise<void> {
    const principal = callerOf(context);
    const record = await records.findOwned(principal, id);
    if (!record.background) {
      throw new SluiceError('invalid_request', { message: `Response ${id} was not created with background: true; only background responses can be cancelled (a streamed one stops when its client disconnects).` });
    }
    if (!isFinalStatus(record.status)) {
      await registry.cancel(record.generationId, new SluiceError('cancelled', { message: 'The response was cancelled by request (POST /v1/responses/:id/cancel).' }));
      const found = await registry.find(record.generationId);
      if (found) await finished(found.generation, cancelWaitMs);
    }
    // Read again: this node's write of the outcome is awaited; another node's may still be on its way.
    const after = await records.findOwned(principal, id);
    sendJson(response, 200, await currentObject(after));
  }

  async function remove(context: RequestContext, response: ServerResponse, id: string): Promise<void> {
    const record = await records.findOwned(callerOf(context), id);
    // A deleted response should not go on running (and being billed) unseen.
    if (record.background && !isFinalStatus(record.status)) {
      await registry.cancel(record.generationId, new SluiceError('cancelled', { message: 'The response was deleted (DELETE /v1/responses/:id).' }));
    }
    await dependencies.responses.delete(id);
    sendJson(response, 200, { id, object: 'response.deleted', deleted: true });
  }

  return [
    { method: 'POST', pattern: '/v1/responses', handler: create },
    { method: 'GET', pattern: '/v1/responses/:id', handler: (context, _request, response, params) => retrieve(context, response, params['id'] ?? '') },
    { method: 'DELETE', pattern: '/v1/responses/:id', handler: (context, _request, response, params) => remove(context, response, params['id'] ?? '') },
    {
      method: 'POST',
      pattern: '/v1/responses/:id/cancel',
      handler: (context, request, response, params) => {
        request.resume();
        return cancel(context, response, params['id'] ?? '');
      },
    },
  ];
}

/**
 * Keeps a background generation running without its client: a subscriber of its own that leaves
 * once the generation has finished (so leaving never cancels it). Its last client leaving then
 * changes nothing; POST …/cancel and DELETE stop it.
 */
function keepRunning(generation: Generation): void {
  const leave = generation.subscribe(() => {});
  void generation.done.then(leave);
}

/** Resolves once the view has its terminal event, or after `timeoutMs`. */
function finished(view: GenerationView, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (view.finished) return resolve();
    const timer = setTimeout(done, timeoutMs);
    const unsubscribe = view.subscribe(() => {
      if (view.finished) done();
    });
    function done(): void {
      clearTimeout(timer);
      unsubscribe();
      resolve();
    }
  });
}
