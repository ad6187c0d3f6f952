// Starts generations and keeps track of the running ones, so shutdown can drain them and metrics
// can count them. Routes go through here; they never construct a Generation themselves. It is
// also where a generation is metered: the caller's limits admit it before anything starts, and
// when it ends its actual tokens are charged and its one usage row is written.
import type { ModelRouter } from '../routing/model-router.js';
import type { ChatRequest, CallContext } from '../contract/provider.js';
import type { Metrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import type { Principal, Limits } from '../contract/principal.js';
import type { Admission, Limiter } from '../limits/limiter.js';
import type { RequestLogStore, UsageRecord, UsageStore } from '../store/store.js';
import { SluiceError } from '../errors/sluice-error.js';
import { Generation } from './generation.js';
import type { GenerationTrace } from '../contract/generation-trace.js';
import type { GenerationSummary } from '../contract/generation-summary.js';
import { createUsageWriter } from './usage-writer.js';
import type { GenerationRegistry } from './generation-registry.js';
import { modelRefusal } from '../auth/model-allowlist.js';
import { costOf, type Price } from '../contract/cost.js';
import type { UpstreamPools } from '../routing/upstream-pools.js';
import { estimatePromptTokens } from '../contract/usage-estimate.js';
import { collectAnswer } from './collect-answer.js';

/** A generation running on this node, as the console's Live view lists it. */
export interface RunningGeneration {
  readonly id: string;
  readonly userId: string;
  readonly keyId?: string;
  /** The model name the client asked for. */
  readonly model: string;
  readonly route?: string;
  /** Ms since the epoch. */
  readonly startedAt: number;
  /** True once the answer has begun (its first token exists). */
  readonly committed: boolean;
}

export interface StartOptions {
  /** The model name as the client gave it (alias or provider/model). */
  model: string;
  request: Omit<ChatRequest, 'model'>;
  mode: CallContext['mode'];
  requestId: string;
  /** Who pays: limits are checked and usage is recorded for this principal. */
  principal: Principal;
  /**
   * Keeps the generation running for `resumeGraceMs` after its last client left and makes it
   * findable by id (native API); otherwise leaving cancels it at once (OpenAI route).
   */
  resumable?: boolean;
  conversationId?: string;
  /** The API surface the request came through, for its usage row: `chat-completions`, `native`, `websocket`, `responses`, `messages`. */
  route?: string;
  /** The request's trace, when it is traced: the generation's upstream attempts become its child spans. */
  trace?: GenerationTrace;
}

export interface GenerationService {
  /**
   * Admits the request against the principal's model allowlist and limits and starts the
   * generation. Rejects with `model_not_allowed`, `model_not_found`, `shutting_down`,
   * `rate_limited` or `quota_exceeded` before anything starts.
   */
  start(options: StartOptions): Promise<Generation>;
  readonly active: ReadonlySet<Generation>;
  /** The generations running on this node, oldest first, with who they run for. */
  running(): RunningGeneration[];
  /** Refuses new generations from now on. */
  stopAccepting(): void;
  readonly accepting: boolean;
  /** Settles when every usage row written so far is stored (shutdown, tests). */
  flushUsage(): Promise<void>;
  /** Queues a usage row of a request that is not a generation (embeddings), with the generations' own. */
  recordUsage(row: UsageRecord): void;
}

export interface GenerationServiceDependencies {
  router: ModelRouter;
  /** Chooses each attempt's deployment and key (docs/pools.md). */
  pools: UpstreamPools;
  metrics: Metrics;
  logger: Logger;
  now: () => number;
  createId: () => string;
  limiter: Limiter;
  usage: UsageStore;
  /** The limits that apply to a user (config `limits.users`, else `limits.perUser`). */
  userLimits: (userId: string) => Limits;
  /**
   * The price of a request for `model` (the name the client asked for) served by `deployment`
   * (`provider/model`), or of its first choice without one; undefined for an unpriced model.
   * config/price.ts `servedPrice` over the current config.
   */
  priceOf: (model: string, deployment?: string) => Price | undefined;
  /** Where resumable generations are tracked. */
  registry: GenerationRegistry;
  resumeGraceMs: number;
  /**
   * Where prompt and answer text go when `enabled()` (config `log.requests`, read per generation
   * so a reload turns it on or off). Absent: no text is kept.
   */
  requestLog?: { readonly store: RequestLogStore; enabled(): boolean };
}

/** What accounting for a finished generation needs of its request. */
interface Accounting {
  principal: Principal;
  model: string;
  route: string | undefined;
  startedAt: number;
  admission: Admission;
  /** Set when the request's text is kept: where, and the prompt to keep. */
  keepText?: RequestLogStore;
  messages?: ChatRequest['messages'];
}

export function createGenerationService(dependencies: GenerationServiceDependencies): GenerationService {
  const { limiter, logger, now } = dependencies;
  const active = new Set<Generation>();
  const about = new Map<Generation, Omit<RunningGeneration, 'committed'>>();
  const usageWriter = createUsageWriter({ usage: dependencies.usage, logger });
  const recordUsage = (row: UsageRecord) => usageWriter.write(row);
  let accepting = true;

  /**
   * Once the generation is done: its metrics, usage row, limit settlement and kept text. A function
   * of its own, so the callback keeps what it names and not the request's whole options (the prompt
   * among them) for as long as the answer runs.
   */
  function account(generation: Generation, facts: Accounting): void {
    const { principal, model, route, startedAt, admission, keepText } = facts;
    void generation.done.then(async (summary) => {
      active.delete(generation);
      about.delete(generation);
      dependencies.metrics.recordGeneration(model, summary);
      const row = usageRow(principal, model, startedAt, summary, route);
      if (row.deployment === undefined && summary.provider !== '') row.deployment = `${summary.provider}/${summary.upstreamModel}`;
      const price = dependencies.priceOf(model, row.deployment);
      const cost = price !== undefined ? costOf(summary.usage, price) : undefined;
      if (cost !== undefined) {
        row.costMicros = cost.micros;
        row.currency = cost.currency;
      }
      recordUsage(row);
      if (summary.attempts > 1) logger.info({ generationId: summary.id, model, deployment: summary.deployment, providerKeyId: summary.providerKeyId, attempts: summary.attempts, failedAttempts: summary.fallbacks }, 'generation needed several upstream attempts');
      await admission.settle(summary.usage.totalTokens, cost).catch((error: unknown) => logger.error({ err: error, generationId: summary.id }, 'limit settlement failed'));
      if (keepText) {
        const entry = { generationId: summary.id, at: startedAt, userId: principal.userId, prompt: JSON.stringify(facts.messages), answer: collectAnswer(generation.events).text };
        await keepText.recordMany([entry]).catch((error: unknown) => logger.error({ err: error, generationId: summary.id }, 'request text not stored'));
      }
    });
  }

  return {
    active,
    running: () => [...about.entries()].map(([generation, info]) => ({ ...info, committed: generation.committed })),
    get accepting() {
      return accepting;
    },
    stopAccepting() {
      accepting = false;
    },
    flushUsage: () => usageWriter.flush(),
    recordUsage,
    async start(options) {
      if (!accepting) throw new SluiceError('shutting_down');
      // Before the name is resolved, so a restricted caller cannot tell which models exist beyond its list.
      const notAllowed = modelRefusal(options.principal, options.model);
      if (notAllowed) {
        recordUsage(refusedRow(options, now(), notAllowed.code));
        throw notAllowed;
      }
      const route = dependencies.router.resolve(options.model);
      const { principal } = options;
      const startedAt = now();
      // Budgets are checked in the currency of the model's price; an unpriced model spends nothing.
      const currency = dependencies.priceOf(options.model)?.currency;
      let admission;
      try {
        admission = await limiter.admit({
          userId: principal.userId,
          userLimits: dependencies.userLimits(principal.userId),
          keyLimits: principal.keyLimits,
          ...(principal.keyId !== undefined ? { keyId: principal.keyId } : {}),
          ...(currency !== undefined ? { currency } : {}),
        });
      } catch (error) {
        if (error instanceof SluiceError) {
          recordUsage({ ...usageIdentity(principal, options.model, options.route), at: startedAt, provider: '', promptTokens: 0, completionTokens: 0, totalTokens: 0, estimated: false, durationMs: 0, outcome: 'refused', errorCode: error.code });
        }
        throw error;
      }
      // Checked again: the admission awaited, and shutdown may have begun meanwhile.
      if (!accepting) {
        await admission.settle(0);
        throw new SluiceError('shutting_down');
      }
      // Counted once, after the first attempt's request has gone (below), unless a provider's
      // token budget needs it before (decision 0046).
      const prompt = promptTokensOf(options.request.messages);
      const generation = new Generation({
        id: dependencies.createId(),
        request: options.request,
        estimatedPromptTokens: () => prompt.estimatedPromptTokens,
        attempts: dependencies.pools.open(route, prompt),
        mode: options.mode,
        requestId: options.requestId,
        now,
        ...(options.resumable === true ? { resumeGraceMs: dependencies.resumeGraceMs } : {}),
        ...(options.trace !== undefined ? { trace: options.trace } : {}),
      });
      active.add(generation);
      about.set(generation, { id: generation.id, ...usageIdentity(principal, options.model, options.route), startedAt });
      // Decided at the start: a reload during the answer neither loses half of it nor starts keeping it midway.
      const keepText = dependencies.requestLog?.enabled() === true ? dependencies.requestLog.store : undefined;
      if (options.resumable === true) {
        dependencies.registry.track(generation, {
          id: generation.id,
          ownerId: principal.userId,
          model: options.model,
          startedAt,
          ...(options.conversationId !== undefined ? { conversationId: options.conversationId } : {}),
        });
      }
      account(generation, { principal, model: options.model, route: options.route, startedAt, admission, ...(keepText !== undefined ? { keepText, messages: options.request.messages } : {}) });
      // The first attempt's request may not be on the wire yet: undici writes a request on a
      // reused keep-alive connection from a setImmediate of its own, once it has checked that the
      // idle socket brought nothing unasked. Whatever runs before that delays it. So what the
      // route does next (its response's head, its encoder, its subscription) and the prompt's
      // count wait for the next check phase, which comes after that write (decision 0046).
      await nextCheckPhase();
      prompt.count();
      return generation;
    },
  };
}

/** The prompt's estimated tokens, counted on first read. */
function promptTokensOf(messages: ChatRequest['messages']): { readonly estimatedPromptTokens: number; count(): number } {
  let counted: number | undefined;
  const count = (): number => (counted ??= estimatePromptTokens(messages));
  return {
    get estimatedPromptTokens() {
      return count();
    },
    count,
  };
}

/** Resolves in the event loop's next check phase, after every setImmediate queued before it. */
function nextCheckPhase(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

type UsageIdentity = Pick<UsageRecord, 'userId' | 'keyId' | 'model' | 'route'>;

function usageIdentity(principal: Principal, model: string, route: string | undefined): UsageIdentity {
  const identity: Writable<UsageIdentity> = { userId: principal.userId, model };
  if (principal.keyId !== undefined) identity.keyId = principal.keyId;
  if (route !== undefined) identity.route = route;
  return identity;
}

/** The usage row of a request refused before anything started. */
function refusedRow(options: StartOptions, at: number, errorCode: string): UsageRecord {
  return { ...usageIdentity(options.principal, options.model, options.route), at, provider: '', promptTokens: 0, completionTokens: 0, totalTokens: 0, estimated: false, durationMs: 0, outcome: 'refused', errorCode };
}

type Writable<T> = { -readonly [Key in keyof T]: T[Key] };

/**
 * The usage row of a finished generation. Built field by field, not from spreads of conditional
 * objects: those took 2% of the CPU of a non-streamed request (docs/decisions/0025-per-request-path.md).
 */
function usageRow(principal: Principal, model: string, at: number, summary: GenerationSummary, route: string | undefined): Writable<UsageRecord> {
  const row: Writable<UsageRecord> = {
    userId: principal.userId,
    model,
    at,
    generationId: summary.id,
    provider: summary.provider,
    upstreamModel: summary.upstreamModel,
    promptTokens: summary.usage.promptTokens,
    completionTokens: summary.usage.completionTokens,
    totalTokens: summary.usage.totalTokens,
    estimated: summary.usage.estimated,
    durationMs: summary.durationMs,
    outcome: summary.outcome,
    attempts: summary.attempts,
  };
  if (principal.keyId !== undefined) row.keyId = principal.keyId;
  if (route !== undefined) row.route = route;
  if (summary.timeToFirstTokenMs !== undefined) row.timeToFirstTokenMs = summary.timeToFirstTokenMs;
  if (summary.errorCode !== undefined) row.errorCode = summary.errorCode;
  if (summary.deployment !== undefined) row.deployment = summary.deployment;
  if (summary.providerKeyId !== undefined) row.providerKeyId = summary.providerKeyId;
  return row;
}
