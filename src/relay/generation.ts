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
import type { CallContext, ChatRequest } from '../contract/provider.js';
import type { AttemptTrace, GenerationTrace } from '../contract/generation-trace.js';
import { errorPayload, isTerminal, type StreamEvent, type Usage } from '../contract/stream-event.js';
import { withTimeouts } from './timeouts.js';
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
  readonly #observers = new Set<GenerationListener>();
  /** Why cancel() was called; undefined while the generation may run on. */
  #cancelReason: SluiceError | undefined;
  /**
   * The controller of the current step (choosing an attempt, then running it), which cancel()
   * aborts: one AbortController per attempt, not one more for the generation, since each costs an
   * EventTarget and its listeners on every request (docs/decisions/0031-one-round-trip-and-one-signal.md).
   */
  #step: AbortController | undefined;
  readonly #options: GenerationOptions;
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
    this.#options = options;
    this.#startedAt = options.now();
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
    void this.#run();
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
    this.#observers.add(listener);
    return () => {
      this.#observers.delete(listener);
    };
  }

  /** Aborts the upstream call; the log ends with an `error` event carrying `reason`. */
  cancel(reason: SluiceError = new SluiceError('cancelled')): void {
    if (this.finished || this.#cancelReason !== undefined) return;
    this.#cancelReason = reason;
    this.#step?.abort(reason);
  }

  async #run(): Promise<void> {
    const source = this.#options.attempts ?? attemptsInOrder(this.#options.candidates ?? []);
    let lastError: SluiceError | undefined;
    for (;;) {
      let attempt: UpstreamAttempt | undefined;
      const step = new AbortController();
      this.#step = step;
      try {
        if (this.#cancelReason !== undefined) throw this.#cancelReason;
        // A fixed list answers at once, so the first upstream call starts within the constructor,
        // as it always did; the pool router's answer is awaited.
        const next = source.next(step.signal);
        attempt = next instanceof Promise ? await next : next;
      } catch (thrown) {
        const reason = this.#cancelReason;
        this.#fail(toSluiceError(reason ?? thrown), reason !== undefined ? 'cancelled' : 'error');
        return;
      }
      if (attempt === undefined) {
        this.#fail(lastError ?? new SluiceError('internal_error', { message: 'The model resolved to no upstream.' }), 'error');
        return;
      }
      // The failed attempt before this one is a fallback only now that another one follows: the
      // last failure is the generation's error, not a fallback.
      if (lastError !== undefined && this.#deployment !== undefined) this.#fallbacks.push({ provider: this.#provider, deployment: this.#deployment, code: lastError.code });
      const retry = await this.#runAttempt(attempt, step);
      if (retry === undefined) return;
      lastError = retry;
    }
  }

  /**
   * One upstream call under `step`'s signal (aborted by cancel() or by a timeout); resolves with
   * the error to retry after, or undefined when the generation is finished.
   */
  async #runAttempt(attempt: UpstreamAttempt, step: AbortController): Promise<SluiceError | undefined> {
    this.#attempt = attempt;
    this.#attempts += 1;
    this.#provider = attempt.adapter.id;
    this.#upstreamModel = attempt.model;
    this.#deployment = attempt.deployment;
    this.#keyId = attempt.keyId;
    const attemptTrace = this.#options.trace?.attempt({ provider: attempt.adapter.id, model: attempt.model, deployment: attempt.deployment, ...(attempt.keyId !== undefined ? { keyId: attempt.keyId } : {}) });
    this.#attemptTrace = attemptTrace;
    try {
      if (this.#cancelReason !== undefined) throw this.#cancelReason;
      const upstream = attempt.adapter.stream(
        { ...this.#options.request, model: attempt.model },
        {
          signal: step.signal,
          mode: this.#options.mode,
          requestId: this.#options.requestId,
          ...(attempt.apiKey !== undefined ? { apiKey: attempt.apiKey } : {}),
          ...(attemptTrace?.traceparent !== undefined ? { traceparent: attemptTrace.traceparent } : {}),
        },
      );
      for await (const batch of withTimeouts(upstream, attempt.timeouts, (reason) => step.abort(reason), attempt.adapter.id, step.signal)) {
        // Nothing follows the terminal event, even from an adapter that yields more in its batch.
        for (const event of batch) {
          this.#accept(event);
          if (this.finished) break;
        }
        if (this.finished) break;
      }
      if (!this.finished) throw new SluiceError('upstream_stream_interrupted', { provider: this.#provider, message: `Provider "${this.#provider}" ended without finishing the answer.` });
      return undefined;
    } catch (thrown) {
      const reason = this.#cancelReason;
      const cancelled = reason !== undefined;
      const error = toSluiceError(reason ?? thrown);
      // Before the first byte a failure is the upstream's, and the pool router hears of it; after
      // it, the answer is partly delivered and nothing is retried (docs/pools.md).
      if (!cancelled && !this.committed) {
        await attempt.failed(error);
        if (retryCodes.has(error.code)) {
          attempt.ended(0);
          attemptTrace?.end({ outcome: 'retried', errorCode: error.code });
          return error;
        }
      }
      this.#fail(error, cancelled ? 'cancelled' : 'error');
      return undefined;
    }
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
    for (const listener of [...this.#listeners, ...this.#observers]) listener();
    const summary = this.#unannounced;
    if (summary !== undefined) {
      this.#unannounced = undefined;
      this.#resolveDone(summary);
    }
  };

  /** Called right after the terminal event was appended (so `finished` is already true). */
  #settle(outcome: Outcome, errorCode?: ErrorCode): void {
    clearTimeout(this.#graceTimer);
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
    if (errorCode !== undefined) summary.errorCode = errorCode;
    if (this.#firstTokenAt !== undefined) summary.timeToFirstTokenMs = this.#firstTokenAt - this.#startedAt;
    this.#attemptTrace?.end({ outcome, usage: summary.usage, ...(errorCode !== undefined ? { errorCode } : {}) });
    // `done` settles after the listeners have had the terminal event (the notification its append
    // scheduled), so the client's last bytes leave before the accounting that awaits `done` (usage
    // row, metrics, limits) runs: that work is not on the answer's critical path (decision 0026).
    this.#summary = summary;
    this.#unannounced = summary;
  }

  #estimateUsage(): Usage {
    let completionTokens = 0;
    for (const event of this.events) {
      if (event.type === 'text-delta') completionTokens += estimateTokens(event.text);
      else if (event.type === 'tool-call-delta' && event.argumentsDelta) completionTokens += estimateTokens(event.argumentsDelta);
    }
    const promptTokens = estimatePromptTokens(this.#options.request.messages);
    return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, estimated: true };
  }
}

export function lastEvent(generation: Generation): StreamEvent | undefined {
  return generation.events[generation.events.length - 1];
}

export { isTerminal };
