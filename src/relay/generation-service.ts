// Starts generations and keeps track of the running ones, so shutdown can drain them and metrics
// can count them. Routes go through here; they never construct a Generation themselves.
import type { ModelRouter } from '../routing/model-router.js';
import type { ChatRequest, CallContext } from '../providers/types.js';
import type { Metrics } from '../observability/metrics.js';
import { SluiceError } from '../errors/sluice-error.js';
import { Generation } from './generation.js';

export interface StartOptions {
  /** The model name as the client gave it (alias or provider/model). */
  model: string;
  request: Omit<ChatRequest, 'model'>;
  mode: CallContext['mode'];
  requestId: string;
}

export interface GenerationService {
  /** Throws `model_not_found` or `shutting_down` before anything starts. */
  start(options: StartOptions): Generation;
  readonly active: ReadonlySet<Generation>;
  /** Refuses new generations from now on. */
  stopAccepting(): void;
  readonly accepting: boolean;
}

export function createGenerationService(dependencies: { router: ModelRouter; metrics: Metrics; now: () => number; createId: () => string }): GenerationService {
  const active = new Set<Generation>();
  let accepting = true;
  return {
    active,
    get accepting() {
      return accepting;
    },
    stopAccepting() {
      accepting = false;
    },
    start(options) {
      if (!accepting) throw new SluiceError('shutting_down');
      const candidates = dependencies.router.resolve(options.model);
      const generation = new Generation({
        id: dependencies.createId(),
        request: options.request,
        candidates,
        mode: options.mode,
        requestId: options.requestId,
        now: dependencies.now,
      });
      active.add(generation);
      void generation.done.then((summary) => {
        active.delete(generation);
        dependencies.metrics.recordGeneration(options.model, summary);
      });
      return generation;
    },
  };
}
