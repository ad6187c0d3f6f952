// One upstream call owned by Sluice, not by the client connection: it makes the attempts its
// source chooses (the pool router: docs/pools.md), moving to the next only while nothing of the
// answer exists yet, appends every event to a
// seq-numbered log, and tells its subscribers when the log grew. It has one AbortController; when
// its last subscriber leaves, it is cancelled at once, or, when it is resumable, after
// `resumeGraceMs` unless somebody re-attached by then.
import { SluiceError, toSluiceError } from '../errors/sluice-error.js';
import type { ErrorCode } from '../errors/table.js';
import type { Candidate } from '../routing/model-router.js';
import { attemptsInOrder, coolingCodes, type AttemptSource, type UpstreamAttempt } from '../routing/upstream-pools.js';
import type { CallContext, ChatRequest, EventBatch, UpstreamEvents } from '../contract/provider.js';
import { Step } from './step.js';
import type { AttemptTrace, GenerationTrace } from '../contract/generation-trace.js';
import { errorPayload, isTerminal, type StreamEvent, type Usage } from '../contract/stream-event.js';
import { TimedSink } from './timeouts.js';
import { startUpstream } from './upstream-events.js';
import { EventLog } from './event-log.js';
import type { GenerationSummary, Outcome } from '../contract/generation-summary.js';
import { estimatePromptTokens, estimateTokens } from '../contract/usage-estimate.js';

export interface GenerationOptions {
  id: string;
  /** The request without a model: each attempt supplies its own. */
  request: Omit<ChatRequest, 'model'>;
  /** Where the attempts go: the pool router's choice for this request (UpstreamPools.open)… */
  attempts?: AttemptSource;
  /** …or a fixed list tried in order, once each (tests, and callers that already chose). */
  candidates?: readonly Candidate[];
  mode: CallContext['mode'];
  requestId: string;
  now: () => number;
  /**
   * When set, the generation outlives its last subscriber by this many ms, waiting for a
   * re-attach (`Last-Event-ID`); absent, leaving cancels it at once.
   */
  resumeGraceMs?: number;
  /** Present when the request is traced: each upstream attempt becomes a child span. */
  trace?: GenerationTrace;
  /**
   * The prompt's estimated tokens (contract/usage-estimate.ts), or how to get them, if the caller
   * has that already; otherwise counted from the request when first needed.
   */
  estimatedPromptTokens?: number | (() => number);
}

/**
 * Errors after which the next attempt is made, if nothing of the answer exists yet: those that cool
 * a deployment or key down, and a key the provider refused (401/403), since another key or
 * deployment may well be accepted.
 */
const retryCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['upstream_auth_failed', ...coolingCodes]);

export type GenerationListener = () => void;

/**
 * What a client connection needs of a generation: its log, whether the answer exists yet, and
 * change notifications. A Generation is one; in cluster mode a generation running on another
 * node is read through the same shape.
 */
export interface GenerationView {
  readonly id: string;
  /** `events[seq]` is the event with that sequence number. */
  readonly events: readonly StreamEvent[];
  /** True once an answer event exists: errors can no longer be HTTP statuses. */
  readonly committed: boolean;
  readonly finished: boolean;
  subscribe(listener: GenerationListener): () => void;
  cancel(reason?: SluiceError): void;
  bytesFrom(seq: number): number;
}

export class Generation implements GenerationView {
  readonly id: string;
  /** Settles when the generation has its terminal event; never rejects. */
  readonly done: Promise<GenerationSummary>;

  readonly #log = new EventLog();
  readonly #listeners = new Set<GenerationListener>();
  /** Notified like listeners, but never keep the generation alive nor cancel it by leaving. */
  #observers: Set<GenerationListener> | undefined;
  /** Why cancel() was called; undefined while the generation may run on. */
  #cancelReason: SluiceError | undefined;
  /**
   * The cancellation of the current step (choosing an attempt, then running it), which cancel()
   * aborts: one per attempt, not one more for the generation (docs/decisions/0031-one-round-trip-and-one-signal.md),
   * and with an AbortSignal only if something reads one (decision 0046).
   */
  #step: Step | undefined;
  /** The current attempt's sink; closed when the attempt ends or the generation settles. */
  #sink: TimedSink | undefined;
  /** Where the attempts come from; let go of once the generation finished. */
  #source: AttemptSource | undefined;
  /** The options but the request and the attempts, which have fields of their own. */
  readonly #options: Omit<GenerationOptions, 'request' | 'attempts' | 'candidates' | 'estimatedPromptTokens'>;
  /**
   * What each attempt sends; let go once the answer commits, since no attempt follows then: a
   * held stream does not keep its prompt, which may well be the largest thing it has.
   */
  #request: Omit<ChatRequest, 'model'> | undefined;
  /**
   * The prompt's estimated tokens, or how to count them: counted when first needed (an answer
   * without usage), and at the latest when the answer commits and the prompt is let go. Not before
   * the upstream call (decision 0046).
   */
  #promptTokens: number | (() => number) | undefined;
  readonly #startedAt: number;
  #firstTokenAt: number | undefined;
  #sawStart = false;
  #usage: Usage | undefined;
  #provider = '';
  #upstreamModel = '';
  #attemptTrace: AttemptTrace | undefined;
  #deployment: string | undefined;
  #keyId: string | undefined;
  #attempts = 0;
  #attempt: UpstreamAttempt | undefined;
  #notifyScheduled = false;
  #resolveDone!: (summary: GenerationSummary) => void;
  #summary: GenerationSummary | undefined;
  /** The summary of a settled generation, announced on `done` once its listeners have had the terminal event. */
  #unannounced: GenerationSummary | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  readonly #fallbacks: { provider: string; deployment: string; code: ErrorCode }[] = [];

  constructor(options: GenerationOptions) {
    this.id = options.id;
    const { request, attempts, candidates, estimatedPromptTokens, ...rest } = options;
    this.#options = rest;
    this.#request = request;
    this.#promptTokens = estimatedPromptTokens;
    this.#startedAt = options.now();
    this.#source = attempts ?? attemptsInOrder(candidates ?? []);
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
    this.#next(undefined);
  }

  /** The log. `events[seq]` is the event with that sequence number. */
  get events(): readonly StreamEvent[] {
    return this.#log.events;
  }

  /** True once an answer event exists: from then on no fallback is possible. */
  get committed(): boolean {
    return this.#log.committed;
  }

  /** True once the log holds its terminal event (`end` or `error`). */
  get finished(): boolean {
    return this.#log.finished;
  }

  /**
   * What `done` resolves with, readable at once from the moment the terminal event is logged (the
   * request's log line, written when the response closes, may come before `done`'s callbacks run).
   */
  get summary(): GenerationSummary | undefined {
    return this.#summary;
  }

  get provider(): string {
    return this.#provider;
  }

  /** Approximate encoded bytes (text plus framing) of the events from `seq` to the end of the log. */
  bytesFrom(seq: number): number {
    return this.#log.bytesFrom(seq);
  }

  /**
   * For a generation kept after it finished (a registry's): its log is packed a while after its
   * terminal event, and unpacked when read (EventLog.packWhenFinished).
   */
  packWhenFinished(): void {
    this.#log.packWhenFinished();
  }

  /** True while its log is packed (reading `events` unpacks it). */
  get packed(): boolean {
    return this.#log.packed;
  }

  /**
   * Adds a listener called (batched, once per turn of the event loop) when the log grows.
   * The returned function removes it; removing the last one cancels an unfinished generation.
   */
  subscribe(listener: GenerationListener): () => void {
    this.#listeners.add(listener);
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    return () => {
      if (!this.#listeners.delete(listener)) return;
      if (this.#listeners.size > 0 || this.finished) return;
      const graceMs = this.#options.resumeGraceMs;
      if (graceMs === undefined) {
        this.cancel(new SluiceError('cancelled', { message: 'The client went away; the generation was cancelled.' }));
        return;
      }
      this.#graceTimer = setTimeout(() => {
        if (this.#listeners.size === 0) this.cancel(new SluiceError('cancelled', { message: `Nobody re-attached within ${graceMs.toString()} ms (generations.resumeGraceMs); the generation was cancelled.` }));
      }, graceMs);
      this.#graceTimer.unref();
    };
  }

  /**
   * Adds a listener notified exactly like a subscriber's (once per turn of the event loop when
   * the log grew) that does not count as one: it neither stops the grace timer nor, when it
   * leaves, cancels the generation. For machinery that copies the log elsewhere (the Redis
   * mirror of cluster mode), which must not keep an abandoned generation running.
   */
  observe(listener: GenerationListener): () => void {
    (this.#observers ??= new Set()).add(listener);
    return () => {
      this.#observers?.delete(listener);
    };
  }

  /** Aborts the upstream call; the log ends with an `error` event carrying `reason`. */
  cancel(reason: SluiceError = new SluiceError('cancelled')): void {
    if (this.finished || this.#cancelReason !== undefined) return;
    this.#cancelReason = reason;
    this.#step?.abort(reason);
    // Settles the attempt at once, even when its adapter ignores the signal.
    this.#sink?.fail(reason);
  }

  /**
   * Asks the attempt source for the next attempt (the pool router may answer later) and starts
   * it; `lastError` is the failure of the attempt before, if any. Nothing here waits for the
   * upstream: an attempt's events are pushed to its sink (#start), so a running generation keeps
   * no suspended frame (decision 0034).
   */
  #next(lastError: SluiceError | undefined): void {
    const step = new Step();
    this.#step = step;
    let next: UpstreamAttempt | undefined | Promise<UpstreamAttempt | undefined>;
    try {
      if (this.#cancelReason !== undefined) throw this.#cancelReason;
      // The first attempt may be chosen in this turn, without a signal (decision 0046).
      const source = this.#source;
      // Finished, it attempts nothing more (#attemptFailed returns first).
      if (source === undefined) return;
      next = (this.#attempts === 0 ? source.first?.() : undefined) ?? source.next(step.signal);
    } catch (thrown) {
      this.#failChoosing(thrown);
      return;
    }
    // A fixed list answers at once, so the first upstream call starts within the constructor.
    if (next instanceof Promise) next.then((attempt) => this.#begin(attempt, step, lastError), (thrown: unknown) => this.#failChoosing(thrown));
    else this.#begin(next, step, lastError);
  }

  #failChoosing(thrown: unknown): void {
    const reason = this.#cancelReason;
    this.#fail(toSluiceError(reason ?? thrown), reason !== undefined ? 'cancelled' : 'error');
  }

  #begin(attempt: UpstreamAttempt | undefined, step: Step, lastError: SluiceError | undefined): void {
    if (attempt === undefined) {
      this.#fail(lastError ?? new SluiceError('internal_error', { message: 'The model resolved to no upstream.' }), 'error');
      return;
    }
    // The failed attempt before this one is a fallback only now that another one follows: the
    // last failure is the generation's error, not a fallback.
    if (lastError !== undefined && this.#deployment !== undefined) this.#fallbacks.push({ provider: this.#provider, deployment: this.#deployment, code: lastError.code });
    this.#start(attempt, step);
  }

  /**
   * Starts one upstream call under `step`'s signal (aborted by cancel() or by a timeout). Its
   * events come through a TimedSink; its end or failure goes to #attemptFailed, which retries or
   * finishes the generation.
   */
  #start(attempt: UpstreamAttempt, step: Step): void {
    this.#attempt = attempt;
    this.#attempts += 1;
    this.#provider = attempt.adapter.id;
    this.#upstreamModel = attempt.model;
    this.#deployment = attempt.deployment;
    this.#keyId = attempt.keyId;
    const attemptTrace = this.#options.trace?.attempt({ provider: attempt.adapter.id, model: attempt.model, deployment: attempt.deployment, ...(attempt.keyId !== undefined ? { keyId: attempt.keyId } : {}) });
    this.#attemptTrace = attemptTrace;
    const sink: TimedSink = new TimedSink(
      {
        events: (batch) => this.#onBatch(batch, sink, step),
        end: () => {
          if (!this.finished) void this.#attemptFailed(new SluiceError('upstream_stream_interrupted', { provider: this.#provider, message: `Provider "${this.#provider}" ended without finishing the answer.` }), attempt, attemptTrace);
        },
        fail: (error) => void this.#attemptFailed(error, attempt, attemptTrace),
      },
      attempt.timeouts,
      step,
      attempt.adapter.id,
    );
    this.#sink = sink;
    const request = this.#request;
    if (this.#cancelReason !== undefined || request === undefined) {
      sink.fail(this.#cancelReason ?? new SluiceError('internal_error', { message: 'An attempt was started after the answer committed.' }));
      return;
    }
    let upstream: UpstreamEvents;
    try {
      upstream = attempt.adapter.stream({ ...request, model: attempt.model }, new AttemptContext(step, this.#options.mode, this.#options.requestId, attempt.apiKey, attemptTrace?.traceparent));
    } catch (thrown) {
      sink.fail(thrown);
      return;
    }
    startUpstream(upstream, sink);
  }

  /** One read's events. Nothing follows the terminal event, even from an adapter that sends more in its batch. */
  #onBatch(batch: EventBatch, sink: TimedSink, step: Step): void {
    try {
      for (const event of batch) {
        this.#accept(event);
        if (this.finished) return;
      }
    } catch (thrown) {
      // An error event from the adapter: the attempt fails with it, and its upstream call ends.
      sink.fail(thrown);
      step.abort(thrown);
    }
  }

  /**
   * The attempt ended without finishing the answer. Before the first answer event a failure is
   * the upstream's, and the pool router hears of it; after it, the answer is partly delivered and
   * nothing is retried (docs/pools.md).
   */
  async #attemptFailed(thrown: unknown, attempt: UpstreamAttempt, attemptTrace: AttemptTrace | undefined): Promise<void> {
    if (this.finished) return;
    const reason = this.#cancelReason;
    const cancelled = reason !== undefined;
    const error = toSluiceError(reason ?? thrown);
    if (!cancelled && !this.committed) {
      await attempt.failed(error);
      if (retryCodes.has(error.code)) {
        attempt.ended(0);
        attemptTrace?.end({ outcome: 'retried', errorCode: error.code });
        this.#next(error);
        return;
      }
    }
    this.#fail(error, cancelled ? 'cancelled' : 'error');
  }

  #accept(event: StreamEvent): void {
    switch (event.type) {
      case 'start':
        if (this.#sawStart) return;
        this.#sawStart = true;
        break;
      case 'usage':
        if (this.#usage) return;
        this.#usage = event.usage;
        break;
      case 'end':
        if (!this.#usage) this.#append({ type: 'usage', usage: this.#estimateUsage() });
        this.#append(event);
        this.#settle('completed');
        return;
      case 'error':
        // Adapters throw; an error event from one is treated the same way.
        throw new SluiceError(event.error.code, { ...event.error });
      default:
        // The first answer event: the log commits when it is appended, below.
        if (!this.committed) {
          this.#firstTokenAt = this.#options.now();
          this.#countPromptTokens();
          this.#request = undefined;
          this.#attemptTrace?.firstToken();
          this.#attempt?.succeeded();
          // Every answer starts with `start` (the native API's `meta`), even from an adapter that sent none.
          if (!this.#sawStart) {
            this.#sawStart = true;
            this.#append({ type: 'start', upstreamModel: this.#upstreamModel });
          }
        }
    }
    this.#append(event);
  }

  #fail(error: SluiceError, outcome: Outcome): void {
    if (this.finished) return;
    if (!this.#usage) this.#append({ type: 'usage', usage: this.#estimateUsage() });
    this.#append({ type: 'error', error: errorPayload(error) });
    this.#settle(outcome, error.code);
  }

  #append(event: StreamEvent): void {
    this.#log.append(event);
    if (event.type === 'usage') this.#usage = event.usage;
    // Listeners run once per turn of the event loop, so all events decoded from one network read
    // reach the client in one write.
    if (!this.#notifyScheduled) {
      this.#notifyScheduled = true;
      setImmediate(this.#notify);
    }
  }

  readonly #notify = (): void => {
    this.#notifyScheduled = false;
    for (const listener of this.#observers === undefined ? [...this.#listeners] : [...this.#listeners, ...this.#observers]) listener();
    const summary = this.#unannounced;
    if (summary !== undefined) {
      this.#unannounced = undefined;
      this.#resolveDone(summary);
    }
  };

  /** Called right after the terminal event was appended (so `finished` is already true). */
  #settle(outcome: Outcome, errorCode?: ErrorCode): void {
    clearTimeout(this.#graceTimer);
    this.#sink?.close();
    const summary: GenerationSummary = {
      id: this.id,
      provider: this.#provider,
      upstreamModel: this.#upstreamModel,
      outcome,
      usage: this.#usage ?? this.#estimateUsage(),
      durationMs: this.#options.now() - this.#startedAt,
      fallbacks: this.#fallbacks,
      attempts: this.#attempts,
      ...(this.#deployment !== undefined ? { deployment: this.#deployment } : {}),
      ...(this.#keyId !== undefined ? { providerKeyId: this.#keyId } : {}),
    };
    this.#attempt?.ended(summary.usage.totalTokens);
    // What only a running generation needs goes now: a kept one (resumable, findable for
    // generations.retentionMs) holds its log and summary, not its request, attempt and sink
    // (decision 0047).
    this.#source = undefined;
    this.#attempt = undefined;
    this.#sink = undefined;
    this.#step = undefined;
    if (errorCode !== undefined) summary.errorCode = errorCode;
    if (this.#firstTokenAt !== undefined) summary.timeToFirstTokenMs = this.#firstTokenAt - this.#startedAt;
    this.#attemptTrace?.end({ outcome, usage: summary.usage, ...(errorCode !== undefined ? { errorCode } : {}) });
    // `done` settles after the listeners have had the terminal event (the notification its append
    // scheduled), so the client's last bytes leave before the accounting that awaits `done` (usage
    // row, metrics, limits) runs: that work is not on the answer's critical path (decision 0026).
    this.#summary = summary;
    this.#unannounced = summary;
  }

  #countPromptTokens(): number {
    let counted = this.#promptTokens;
    if (typeof counted === 'number') return counted;
    counted = counted !== undefined ? counted() : estimatePromptTokens(this.#request?.messages ?? []);
    this.#promptTokens = counted;
    return counted;
  }

  #estimateUsage(): Usage {
    let completionTokens = 0;
    for (const event of this.events) {
      if (event.type === 'text-delta') completionTokens += estimateTokens(event.text);
      else if (event.type === 'tool-call-delta' && event.argumentsDelta) completionTokens += estimateTokens(event.argumentsDelta);
    }
    const promptTokens = this.#countPromptTokens();
    return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, estimated: true };
  }
}

/** An attempt's CallContext: its `signal` is the step's, made only when an adapter reads it. */
class AttemptContext implements CallContext {
  readonly cancellation: Step;
  readonly mode: CallContext['mode'];
  readonly requestId: string;
  declare readonly apiKey?: string;
  declare readonly traceparent?: string;

  constructor(step: Step, mode: CallContext['mode'], requestId: string, apiKey: string | undefined, traceparent: string | undefined) {
    this.cancellation = step;
    this.mode = mode;
    this.requestId = requestId;
    if (apiKey !== undefined) this.apiKey = apiKey;
    if (traceparent !== undefined) this.traceparent = traceparent;
  }

  get signal(): AbortSignal {
    return this.cancellation.signal;
  }
}

export function lastEvent(generation: Generation): StreamEvent | undefined {
  return generation.events[generation.events.length - 1];
}

export { isTerminal };
