// Embeddings through the same admission and accounting as generations, without a generation:
// an embeddings answer is one JSON body, so there is no event log to follow or resume. The model
// allowlist, the model router, the caller's limits (one request, then the prompt tokens charged),
// one usage row per request (route `embeddings`), fallbacks to the next candidate that serves
// embeddings, a deadline, and cancellation when the caller's signal aborts (docs/embeddings.md).
import { SluiceError } from '../errors/sluice-error.js';
import type { EmbeddingRequest, EmbeddingResult } from '../contract/provider.js';
import type { Limits, Principal } from '../contract/principal.js';
import { estimateTokens } from '../contract/usage-estimate.js';
import { modelRefusal } from '../auth/model-allowlist.js';
import type { Limiter } from '../limits/limiter.js';
import type { ModelRouter } from '../routing/model-router.js';
import type { Route, UpstreamAttempt, UpstreamPools } from '../routing/upstream-pools.js';
import type { UsageRecord } from '../store/store.js';
import { costOf, type Price } from '../contract/cost.js';

export interface EmbedOptions {
  /** The model name as the client gave it (alias or provider/model). */
  model: string;
  input: EmbeddingRequest['input'];
  encodingFormat?: EmbeddingRequest['encodingFormat'];
  dimensions?: number;
  /** Who pays: limits are checked and usage is recorded for this principal. */
  principal: Principal;
  requestId: string;
  /** Aborted when the client leaves: the upstream request ends at once. */
  signal: AbortSignal;
  /** The end user sent upstream (OpenAI's `user`), when known. */
  userId?: string;
}

export interface EmbedOutcome {
  result: EmbeddingResult;
  /** The provider id that answered. */
  provider: string;
  /** Prompt tokens charged: the provider's count, or Sluice's estimate when it gave none. */
  promptTokens: number;
  estimated: boolean;
}

export interface EmbeddingService {
  /**
   * Admits and runs one embeddings request. Rejects with `model_not_allowed`,
   * `model_not_found`, `model_not_supported` (no candidate serves embeddings), `rate_limited`,
   * `quota_exceeded`, `shutting_down`, an upstream error, a timeout or `cancelled`.
   */
  embed(options: EmbedOptions): Promise<EmbedOutcome>;
}

export interface EmbeddingServiceDependencies {
  router: ModelRouter;
  /** The pool router: which deployment and key serve each attempt (docs/pools.md). */
  pools: UpstreamPools;
  limiter: Limiter;
  /** The limits that apply to a user (config `limits.users`, else `limits.perUser`). */
  userLimits: (userId: string) => Limits;
  /** Queues one usage row (the generations' writer: one queue, one flush). */
  recordUsage: (row: UsageRecord) => void;
  /** The price of a model alias or `provider/model` (config `price`, `prices`); undefined: unpriced. */
  priceOf: (model: string, deployment?: string) => Price | undefined;
  /** False once shutdown began. */
  accepting: () => boolean;
  now: () => number;
}

const route = 'embeddings';

export function createEmbeddingService(dependencies: EmbeddingServiceDependencies): EmbeddingService {
  const { limiter, now, recordUsage } = dependencies;

  /**
   * The route of `model` with only the deployments that serve embeddings, in the router's order:
   * the pools' balancing, health, key rotation and retry bounds apply as for chat (docs/pools.md).
   */
  function embeddingRoute(model: string): Route {
    const resolved = dependencies.router.resolve(model);
    const pools = resolved.pools.map((pool) => ({ ...pool, deployments: pool.deployments.filter((deployment) => deployment.adapter.embed !== undefined) })).filter((pool) => pool.deployments.length > 0);
    if (pools.length === 0) {
      const types = [...new Set(resolved.pools.flatMap((pool) => pool.deployments.map((deployment) => deployment.adapter.type)))].join(', ');
      throw new SluiceError('model_not_supported', { param: 'model', message: `The model "${model}" is served by a provider of type ${types}, which has no embeddings; use a model of an openai or azure provider.` });
    }
    return { ...resolved, pools };
  }

  return {
    async embed(options) {
      const { principal } = options;
      const identity = { userId: principal.userId, model: options.model, route, ...(principal.keyId !== undefined ? { keyId: principal.keyId } : {}) };
      const refused = (error: SluiceError): SluiceError => {
        recordUsage({ ...identity, at: now(), provider: '', promptTokens: 0, completionTokens: 0, totalTokens: 0, estimated: false, durationMs: 0, outcome: 'refused', errorCode: error.code });
        return error;
      };
      if (!dependencies.accepting()) throw new SluiceError('shutting_down');
      const notAllowed = modelRefusal(principal, options.model);
      if (notAllowed) throw refused(notAllowed);
      let resolved: Route;
      try {
        resolved = embeddingRoute(options.model);
      } catch (error) {
        throw error instanceof SluiceError ? refused(error) : error;
      }
      const startedAt = now();
      let admission;
      try {
        // Budgets are checked in the currency of the model's price, as for chat.
        const currency = dependencies.priceOf(options.model)?.currency;
        admission = await limiter.admit({ userId: principal.userId, userLimits: dependencies.userLimits(principal.userId), keyLimits: principal.keyLimits, ...(principal.keyId !== undefined ? { keyId: principal.keyId } : {}), ...(currency !== undefined ? { currency } : {}) });
      } catch (error) {
        throw error instanceof SluiceError ? refused(error) : error;
      }

      const estimate = estimateInputTokens(options.input);
      let lastError: unknown;
      let provider = '';
      let deployment: string | undefined;
      let keyId: string | undefined;
      let attempts = 0;
      const source = dependencies.pools.open(resolved, { estimatedPromptTokens: estimate });
      for (;;) {
        let attempt: UpstreamAttempt | undefined;
        try {
          const next = source.next(options.signal);
          attempt = next instanceof Promise ? await next : next;
        } catch (error) {
          // Every deployment cooling down, or no provider budget within the queue timeout.
          lastError = error;
          break;
        }
        if (attempt === undefined) break;
        attempts += 1;
        provider = attempt.adapter.id;
        deployment = attempt.deployment;
        keyId = attempt.keyId;
        try {
          const result = await callAttempt(attempt, options);
          attempt.succeeded();
          const promptTokens = result.usage?.promptTokens ?? estimate;
          attempt.ended(promptTokens);
          const estimated = result.usage === undefined;
          const price = dependencies.priceOf(options.model, deployment);
          const cost = price !== undefined ? costOf({ promptTokens, completionTokens: 0, totalTokens: promptTokens, estimated }, price) : undefined;
          recordUsage({ ...identity, at: startedAt, provider, upstreamModel: result.upstreamModel, deployment, ...(keyId !== undefined ? { providerKeyId: keyId } : {}), promptTokens, completionTokens: 0, totalTokens: promptTokens, estimated, durationMs: now() - startedAt, outcome: 'completed', attempts, ...(cost !== undefined ? { costMicros: cost.micros, currency: cost.currency } : {}) });
          await admission.settle(promptTokens, cost);
          return { result, provider, promptTokens, estimated };
        } catch (error) {
          lastError = error;
          if (!options.signal.aborted && error instanceof SluiceError) await attempt.failed(error);
          attempt.ended(0);
          // A client that left, or an error that another provider would give too: no retry.
          if (options.signal.aborted || !(error instanceof SluiceError) || !error.retryable) break;
        }
      }
      const error = options.signal.aborted ? (options.signal.reason as unknown) : lastError;
      const code = error instanceof SluiceError ? error.code : 'internal_error';
      // A cancelled call may still be billed by the provider: it is charged as estimated.
      const cancelled = code === 'cancelled';
      const tokens = cancelled ? estimate : 0;
      // Priced like a completed call, as a cancelled chat generation is: its estimated tokens.
      const price = cancelled ? dependencies.priceOf(options.model, deployment) : undefined;
      const cost = price !== undefined ? costOf({ promptTokens: tokens, completionTokens: 0, totalTokens: tokens, estimated: true }, price) : undefined;
      recordUsage({ ...identity, at: startedAt, provider, ...(deployment !== undefined ? { deployment } : {}), ...(keyId !== undefined ? { providerKeyId: keyId } : {}), promptTokens: tokens, completionTokens: 0, totalTokens: tokens, estimated: cancelled, durationMs: now() - startedAt, outcome: cancelled ? 'cancelled' : 'error', errorCode: code, attempts, ...(cost !== undefined ? { costMicros: cost.micros, currency: cost.currency } : {}) });
      await admission.settle(tokens, cost);
      throw error;
    },
  };
}

/**
 * One candidate's call, ended by the caller's signal or by the provider's first-byte timeout: an
 * embeddings answer comes in one piece, so its first byte is all but the whole of it.
 */
async function callAttempt(attempt: UpstreamAttempt, options: EmbedOptions): Promise<EmbeddingResult> {
  const embed = attempt.adapter.embed?.bind(attempt.adapter);
  if (!embed) throw new SluiceError('model_not_supported', { param: 'model' });
  const provider = attempt.adapter.id;
  const timeoutMs = attempt.timeouts.firstByteMs;
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(new SluiceError('upstream_first_byte_timeout', { provider, message: `Provider "${provider}" did not answer the embeddings request within ${timeoutMs.toString()} ms (first-byte timeout).` })), timeoutMs);
  try {
    const request: EmbeddingRequest = {
      model: attempt.model,
      input: options.input,
      ...(options.encodingFormat !== undefined ? { encodingFormat: options.encodingFormat } : {}),
      ...(options.dimensions !== undefined ? { dimensions: options.dimensions } : {}),
      ...(options.userId !== undefined ? { userId: options.userId } : {}),
    };
    return await embed(request, { signal: AbortSignal.any([options.signal, timeout.signal]), requestId: options.requestId, ...(attempt.apiKey !== undefined ? { apiKey: attempt.apiKey } : {}) });
  } finally {
    clearTimeout(timer);
  }
}

/** Sluice's estimate of an input's tokens: text as usage rows estimate it, token arrays by length. */
export function estimateInputTokens(input: EmbeddingRequest['input']): number {
  if (typeof input === 'string') return estimateTokens(input);
  let total = 0;
  for (const item of input) {
    if (typeof item === 'string') total += estimateTokens(item);
    else if (typeof item === 'number') total += 1;
    else total += item.length;
  }
  return total;
}
