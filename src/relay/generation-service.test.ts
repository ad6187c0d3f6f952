// The generation service's order of work around the upstream call (decision 0046): a pool of one on
// a single node reaches its adapter inside start(), and start() returns only in the next check
// phase, after every setImmediate queued before it (undici writes a request on a reused
// connection from one of those), so the route's own set-up never delays the upstream write.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { createMemoryHealthStore } from '../routing/memory-health-store.js';
import { createProviderQuotas } from '../routing/provider-quotas.js';
import { createUpstreamPools, type Route } from '../routing/upstream-pools.js';
import { createMemoryLimitState } from '../limits/memory-limit-state.js';
import type { Limiter } from '../limits/limiter.js';
import type { ModelRouter } from '../routing/model-router.js';
import type { UsageStore } from '../store/store.js';
import { createMemoryGenerationRegistry } from './generation-registry.js';
import { createGenerationService } from './generation-service.js';
import { scriptedAdapter } from '../../test/support/scripted-adapter.js';

const settings = { retry: { maxAttempts: 2, maxTotalMs: 60_000 }, cooldown: { initialMs: 1000, maxMs: 10_000, probeTimeoutMs: 5000 }, queueTimeoutMs: 0 };
const timeouts = { connectMs: 1000, firstByteMs: 1000, idleMs: 1000, totalMs: 0 };

function service(order: string[], budget?: { requestsPerMinute: number }) {
  // Answers its first token, then waits until the step is cancelled, without asking for a signal.
  const adapter = scriptedAdapter('p', async function* (_request, context) {
    yield [{ type: 'start', upstreamModel: 'm' }, { type: 'text-delta', text: 'hi' }];
    throw await new Promise((resolve) => context.cancellation?.onAbort(resolve));
  });
  const stream = adapter.stream.bind(adapter);
  adapter.stream = (request, context) => {
    order.push('upstream called');
    return stream(request, context);
  };
  const route: Route = { pools: [{ name: 'm', strategy: 'weighted', deployments: [{ id: 'p/m', provider: 'p', model: 'm', weight: 1, priority: 0, adapter, timeouts, keys: [{ id: 'p#1' }] }] }], settings };
  const router: ModelRouter = { resolve: () => route, list: () => [], pools: () => route.pools.slice() };
  const limiter: Limiter = { admit: () => Promise.resolve({ settle: () => Promise.resolve() }) };
  const usage = { recordMany: () => Promise.resolve(), record: () => Promise.resolve() } as unknown as UsageStore;
  const metrics = createMetrics({ defaultMetrics: false });
  const logger = createLogger('silent');
  const pools = createUpstreamPools({
    health: createMemoryHealthStore(settings.cooldown),
    quotas: createProviderQuotas({ state: createMemoryLimitState(), limitsOf: () => budget, now: Date.now }),
    now: Date.now,
    logger,
    metrics,
  });
  let ids = 0;
  return {
    adapter,
    generations: createGenerationService({
      router,
      pools,
      metrics,
      logger,
      now: Date.now,
      createId: () => `g${(ids += 1).toString()}`,
      limiter,
      usage,
      userLimits: () => ({}),
      priceOf: () => undefined,
      registry: createMemoryGenerationRegistry({ retentionMs: 60_000 }),
      resumeGraceMs: 1000,
    }),
  };
}

const principal = { userId: 'u', role: 'user' as const, via: 'anonymous' as const, keyLimits: {} };
const startOptions = { model: 'm', request: { messages: [{ role: 'user' as const, content: 'Hello there' }], params: {} }, mode: 'stream' as const, requestId: 'r1', principal };

describe('generation service', () => {
  it.each([
    ['in the same turn (a pool of one without a budget)', undefined],
    ['after the pool router awaited a budget', { requestsPerMinute: 100 }],
  ])('calls the upstream %s, and returns only after the setImmediates queued before start()', async (_name, budget) => {
    const order: string[] = [];
    const { generations, adapter } = service(order, budget);
    setImmediate(() => order.push('immediate queued before start()'));
    const generation = await generations.start(startOptions);
    order.push('start() returned');
    expect(order).toEqual(['upstream called', 'immediate queued before start()', 'start() returned']);
    // The attempt carries the step as its cancellation; no signal was asked for, and cancelling reaches it.
    const context = adapter.calls[0];
    expect(context?.cancellation?.aborted).toBe(false);
    generation.subscribe(() => undefined)();
    expect(context?.cancellation?.aborted).toBe(true);
    expect(context?.signal.aborted).toBe(true);
    expect(await generation.done).toMatchObject({ outcome: 'cancelled' });
  });
});
