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
import type { Candidate, ModelRouter } from '../routing/model-router.js';
import type { UsageRecord } from '../store/store.js';

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
  limiter: Limiter;
  /** The limits that apply to a user (config `limits.users`, else `limits.perUser`). */
  userLimits: (userId: string) => Limits;
  /** Queues one usage row (the generations' writer: one queue, one flush). */
  recordUsage: (row: UsageRecord) => void;
  /** False once shutdown began. */
  accepting: () => boolean;
  now: () => number;
}

const route = 'embeddings';

export function createEmbeddingService(dependencies: EmbeddingServiceDependencies): EmbeddingService {
  const { limiter, now, recordUsage } = dependencies;

  /**
   * The upstream candidates of `model` that serve embeddings, in the router's order: the one call
   * to the model router, kept here alone so a change of its shape (pools of deployments) touches
   * only this function.
   */
  function embeddingCandidates(model: string): Candidate[] {
    const candidates = dependencies.router.resolve(model);
    const serving = candidates.filter((candidate) => candidate.adapter.embed !== undefined);
    if (serving.length === 0) {
      const types = [...new Set(candidates.map((candidate) => candidate.adapter.type))].join(', ');
      throw new SluiceError('model_not_supported', { param: 'model', message: `The model "${model}" is served by a provider of type ${types}, which has no embeddings; use a model of an openai or azure provider.` });
    }
    return serving;
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
      let candidates: Candidate[];
      try {
        candidates = embeddingCandidates(options.model);
      } catch (error) {
        throw error instanceof SluiceError ? refused(error) : error;
      }
      const startedAt = now();
      let admission;
      try {
        admission = await limiter.admit({ userId: principal.userId, userLimits: dependencies.userLimits(principal.userId), keyLimits: principal.keyLimits, ...(principal.keyId !== undefined ? { keyId: principal.keyId } : {}) });
      } catch (error) {
        throw error instanceof SluiceError ? refused(error) : error;
      }

      const estimate = estimateInputTokens(options.input);
      let lastError: unknown;
      let provider = '';
      let attempts = 0;
      for (const candidate of candidates) {
        attempts += 1;
        provider = candidate.adapter.id;
        try {
          const result = await callCandidate(candidate, options);
          const promptTokens = result.usage?.promptTokens ?? estimate;
          const estimated = result.usage === undefined;
          recordUsage({ ...identity, at: startedAt, provider, upstreamModel: result.upstreamModel, promptTokens, completionTokens: 0, totalTokens: promptTokens, estimated, durationMs: now() - startedAt, outcome: 'completed', attempts });
          await admission.settle(promptTokens);
          return { result, provider, promptTokens, estimated };
        } catch (error) {
          lastError = error;
          // A client that left, or an error that another provider would give too: no fallback.
          if (options.signal.aborted || !(error instanceof SluiceError) || !error.retryable) break;
        }
      }
      const error = options.signal.aborted ? (options.signal.reason as unknown) : lastError;
      const code = error instanceof SluiceError ? error.code : 'internal_error';
      // A cancelled call may still be billed by the provider: it is charged as estimated.
      const cancelled = code === 'cancelled';
      const tokens = cancelled ? estimate : 0;
      recordUsage({ ...identity, at: startedAt, provider, promptTokens: tokens, completionTokens: 0, totalTokens: tokens, estimated: cancelled, durationMs: now() - startedAt, outcome: cancelled ? 'cancelled' : 'error', errorCode: code, attempts });
      await admission.settle(tokens);
      throw error;
    },
  };
}

/**
 * One candidate's call, ended by the caller's signal or by the provider's first-byte timeout: an
 * embeddings answer comes in one piece, so its first byte is all but the whole of it.
 */
async function callCandidate(candidate: Candidate, options: EmbedOptions): Promise<EmbeddingResult> {
  const embed = candidate.adapter.embed?.bind(candidate.adapter);
  if (!embed) throw new SluiceError('model_not_supported', { param: 'model' });
  const provider = candidate.adapter.id;
  const timeoutMs = candidate.timeouts.firstByteMs;
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(new SluiceError('upstream_first_byte_timeout', { provider, message: `Provider "${provider}" did not answer the embeddings request within ${timeoutMs.toString()} ms (first-byte timeout).` })), timeoutMs);
  try {
    const request: EmbeddingRequest = {
      model: candidate.model,
      input: options.input,
      ...(options.encodingFormat !== undefined ? { encodingFormat: options.encodingFormat } : {}),
      ...(options.dimensions !== undefined ? { dimensions: options.dimensions } : {}),
      ...(options.userId !== undefined ? { userId: options.userId } : {}),
    };
    return await embed(request, { signal: AbortSignal.any([options.signal, timeout.signal]), requestId: options.requestId });
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
