// Upstream pools: for one request, which deployment (`provider/model`) and which provider key
// (`provider#N`) each attempt goes to. Every attempt chooses among the deployments that are
// available now: not cooling down (or half-open, with the one trial request claimed), with at
// least one key not refused, of the lowest priority that has one, then by the pool's strategy
// (weighted random, least in flight, or config order). The provider's budget
// (`providers.<id>.limits`) is asked before sending: a deployment without room is passed over, and
// when none has room the request waits in line for the first budget that refills, up to
// `router.queueTimeoutMs`. How an attempt ended feeds the health store, shared by the cluster:
// 429, 5xx, connect errors and timeouts cool the deployment (or, for a 429 of a provider with
// several keys, that key) down; a 401/403 takes that one key out. docs/pools.md has the rules.
import type { Deployment, PoolStrategy, RouterSettings } from '../config/config.js';
import type { ProviderAdapter, Timeouts } from '../contract/provider.js';
import { SluiceError } from '../errors/sluice-error.js';
import type { ErrorCode } from '../errors/table.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { HealthStore, TargetHealth } from './health.js';
import type { ProviderAdmission, ProviderQuotas } from './provider-quotas.js';
import { createTargetStats, type TargetStatsSummary } from './target-stats.js';

/** One key of a provider entry, as the pool sees it. */
export interface PoolKey {
  /** `provider#N`, N from 1 in the order of `apiKeys`: what logs, usage rows and the admin view show. */
  readonly id: string;
  /** The secret; absent for a provider whose credentials are not rotated (the adapter has them). */
  readonly apiKey?: string;
}

/** A deployment with what it takes to call it. */
export interface PoolDeployment extends Deployment {
  readonly adapter: ProviderAdapter;
  readonly timeouts: Timeouts;
  /** At least one. */
  readonly keys: readonly PoolKey[];
}

/** The deployments of one alias (or of one `provider/model` name), with how to choose among them. */
export interface Pool {
  /** The alias or `provider/model`, as the error `pool_unavailable` names it. */
  readonly name: string;
  readonly strategy: PoolStrategy;
  readonly deployments: readonly PoolDeployment[];
}

/** Where one request may go: its pool, then its fallbacks' pools, with the router settings. */
export interface Route {
  readonly pools: readonly Pool[];
  readonly settings: RouterSettings;
}

/** One upstream call the generation makes. */
export interface UpstreamAttempt {
  readonly adapter: ProviderAdapter;
  /** The provider's own model name. */
  readonly model: string;
  readonly timeouts: Timeouts;
  /** `provider/model`. */
  readonly deployment: string;
  /** `provider#N`; never the key. */
  readonly keyId?: string;
  /** The key to send, for the adapter's CallContext. */
  readonly apiKey?: string;
  /** The first answer event arrived: the targets are healthy. */
  succeeded(): void;
  /** The attempt failed before its first answer event; the health store hears why. */
  failed(error: SluiceError): Promise<void>;
  /** The attempt is over, however it ended: releases its in-flight count and charges its tokens to the provider's budget. */
  ended(totalTokens: number): void;
}

/** The attempts of one request, chosen one at a time. */
export interface AttemptSource {
  /**
   * The next attempt, or undefined when no more may be made (the retry bounds, or every
   * deployment tried). Rejects, when not one attempt could be made, with `pool_unavailable`
   * (every deployment cooling down, with Retry-After) or `provider_limit_reached` (no budget
   * within the queue timeout); with the signal's reason when it aborts while waiting in line.
   */
  next(signal: AbortSignal): Promise<UpstreamAttempt | undefined> | UpstreamAttempt | undefined;
  /**
   * The first attempt chosen in the same turn, when the source can (a pool of one whose health
   * is at hand: decision 0046); undefined otherwise, and `next` chooses it. Asked before `next`,
   * so the request may reach the upstream with no promise and no AbortSignal on its way.
   */
  first?(): UpstreamAttempt | undefined;
}

/** What the admin view shows of one key. */
export interface KeyView extends TargetStatsSummary {
  readonly id: string;
  readonly state: TargetHealth['state'];
  readonly cooldownUntil?: string;
  readonly lastErrorCode?: ErrorCode;
}

/** What the admin view shows of one deployment. */
export interface DeploymentView extends TargetStatsSummary {
  readonly id: string;
  readonly provider: string;
  readonly model: string;
  /** The aliases whose pools hold it. */
  readonly pools: readonly string[];
  readonly state: TargetHealth['state'];
  readonly cooldownUntil?: string;
  readonly consecutiveFailures: number;
  readonly lastErrorCode?: ErrorCode;
  /** Requests running on it now (all nodes, in a cluster). */
  readonly inFlight: number;
  readonly keys: readonly KeyView[];
}

export interface UpstreamPools {
  /** The attempts of one request along `route`. */
  open(route: Route, request: { readonly estimatedPromptTokens: number }): AttemptSource;
  /** Health and recent figures of every deployment of `pools` (each listed once). */
  describe(pools: readonly Pool[]): Promise<DeploymentView[]>;
  /** Forgets the failures of a deployment or key id (admin reset). */
  reset(id: string): Promise<void>;
}

export interface UpstreamPoolsOptions {
  readonly health: HealthStore;
  readonly quotas: ProviderQuotas;
  readonly now: () => number;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Uniform in [0, 1); default Math.random. */
  readonly random?: () => number;
  /** How far back the admin view's figures reach (ms); default 5 minutes. */
  readonly statsWindowMs?: number;
}

/** Failures that cool a deployment (or a key) down and let the request move on. */
export const coolingCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'upstream_connect_failed',
  'upstream_connect_timeout',
  'upstream_first_byte_timeout',
  'upstream_rate_limited',
  'upstream_quota_exceeded',
  'upstream_unavailable',
  'upstream_error',
  'upstream_stream_interrupted',
]);

/** A provider's answer about its account, not the endpoint: with several keys, only the key rests. */
const keyRateCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['upstream_rate_limited', 'upstream_quota_exceeded']);

/**
 * A pool of one has nowhere else to send the request: its cooldown is not a reason to refuse it
 * (only a disabled target is), so every other state reads as healthy, and the upstream answers.
 */
function asPoolOfOne(read: ReadonlyMap<string, TargetHealth>): ReadonlyMap<string, TargetHealth> {
  const asIs = (found: TargetHealth) => found.state === 'disabled' || found.state === 'healthy';
  let changes = false;
  for (const found of read.values()) changes ||= !asIs(found);
  // The usual case, every target healthy (or disabled), is the read itself: no copy per request.
  if (!changes) return read;
  const healthOf = new Map<string, TargetHealth>();
  for (const [id, found] of read) healthOf.set(id, asIs(found) ? found : { ...found, state: 'healthy' });
  return healthOf;
}

const usable = (health: TargetHealth | undefined): boolean => health === undefined || health.state === 'healthy' || health.state === 'half-open';

export function createUpstreamPools(options: UpstreamPoolsOptions): UpstreamPools {
  const { health, quotas, now, logger, metrics } = options;
  const random = options.random ?? Math.random;
  const stats = createTargetStats({ now, windowMs: options.statsWindowMs ?? 5 * 60_000 });
  /** Per provider: where key rotation starts next on this node. */
  const keyTurns = new Map<string, number>();

  function pick(group: readonly PoolDeployment[], strategy: PoolStrategy, healthOf: ReadonlyMap<string, TargetHealth>): PoolDeployment | undefined {
    if (strategy === 'ordered') return group[0];
    let choices = group;
    if (strategy === 'least-busy') {
      const busy = (deployment: PoolDeployment) => healthOf.get(deployment.id)?.inFlight ?? 0;
      const least = Math.min(...group.map(busy));
      choices = group.filter((deployment) => busy(deployment) === least);
    }
    // Weighted random; least-busy breaks its ties the same way.
    const total = choices.reduce((sum, deployment) => sum + deployment.weight, 0);
    let point = random() * total;
    for (const deployment of choices) {
      point -= deployment.weight;
      if (point < 0) return deployment;
    }
    return choices[choices.length - 1];
  }

  /** The keys of `deployment` to try, rotated so that requests spread over them. */
  function rotatedKeys(deployment: PoolDeployment, excludedKeys: ReadonlySet<string>, healthOf: ReadonlyMap<string, TargetHealth>): PoolKey[] {
    const keys = deployment.keys.filter((key) => !excludedKeys.has(key.id) && usable(healthOf.get(key.id)));
    if (keys.length <= 1) return keys;
    const turn = keyTurns.get(deployment.provider) ?? 0;
    keyTurns.set(deployment.provider, turn + 1);
    const start = turn % keys.length;
    return [...keys.slice(start), ...keys.slice(0, start)];
  }

  /** Claims a half-open target's trial request; a healthy one needs no claim. */
  async function claim(id: string, healthOf: ReadonlyMap<string, TargetHealth>): Promise<boolean> {
    if (healthOf.get(id)?.state !== 'half-open') return true;
    return health.claimProbe(id, now());
  }

  function open(route: Route, request: { readonly estimatedPromptTokens: number }): AttemptSource {
    const { settings } = route;
    const startedAt = now();
    const excludedDeployments = new Set<string>();
    const excludedKeys = new Set<string>();
    let poolIndex = 0;
    let attemptsInPool = 0;
    let attempted = false;
    let firstRefusal: SluiceError | undefined;

    function attemptOn(deployment: PoolDeployment, key: PoolKey, admission: ProviderAdmission, release: () => void, healthOf: ReadonlyMap<string, TargetHealth>): UpstreamAttempt {
      const attemptStartedAt = now();
      // Read now, so the attempt (kept for the answer's whole life) does not keep the health read.
      const failing = [deployment.id, key.id].filter((id) => (healthOf.get(id)?.consecutiveFailures ?? 0) > 0);
      const sample = stats.start([deployment.id, key.id]);
      let ended = false;
      return {
        adapter: deployment.adapter,
        model: deployment.model,
        timeouts: deployment.timeouts,
        deployment: deployment.id,
        keyId: key.id,
        ...(key.apiKey !== undefined ? { apiKey: key.apiKey } : {}),
        succeeded() {
          sample.firstToken();
          metrics.deploymentTimeToFirstToken.observe({ deployment: deployment.id }, (now() - attemptStartedAt) / 1000);
          // A target with no failures needs no write (in a cluster, each is a Redis call).
          for (const id of failing) void health.recordSuccess(id, now()).catch((error: unknown) => logger.warn({ err: error, target: id }, 'routing: could not record a success'));
        },
        async failed(error) {
          sample.error(error.code);
          metrics.deploymentErrors.inc({ deployment: deployment.id, key: key.id, code: error.code });
          const retryAfterMs = error.retryAfterSeconds !== undefined ? error.retryAfterSeconds * 1000 : undefined;
          const failure = { code: error.code, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
          try {
            if (error.code === 'upstream_auth_failed') {
              excludedKeys.add(key.id);
              await health.recordFailure(key.id, { ...failure, disable: true }, now());
              logger.warn({ deployment: deployment.id, keyId: key.id, upstreamStatus: error.upstreamStatus }, 'routing: the provider refused this key; it is taken out until POST /admin/deployments/:id/reset');
            } else if (keyRateCodes.has(error.code) && deployment.keys.length > 1) {
              excludedKeys.add(key.id);
              const cooled = await health.recordFailure(key.id, failure, now());
              logger.info({ deployment: deployment.id, keyId: key.id, code: error.code, coolingUntil: cooled.coolingUntil }, 'routing: key cooling down');
            } else if (coolingCodes.has(error.code)) {
              excludedDeployments.add(deployment.id);
              const cooled = await health.recordFailure(deployment.id, failure, now());
              logger.info({ deployment: deployment.id, keyId: key.id, code: error.code, coolingUntil: cooled.coolingUntil }, 'routing: deployment cooling down');
            } else {
              excludedDeployments.add(deployment.id);
            }
          } catch (storeError) {
            logger.warn({ err: storeError, deployment: deployment.id }, 'routing: could not record a failure');
          }
        },
        ended(totalTokens) {
          if (ended) return;
          ended = true;
          release();
          sample.end();
          void admission.settle(totalTokens).catch((error: unknown) => logger.error({ err: error, provider: deployment.provider }, 'routing: provider budget settlement failed'));
        },
      };
    }

    /** Starts an attempt on `deployment` once its budget admitted it: a key (claimed if half-open) and an in-flight count. */
    async function begin(deployment: PoolDeployment, admission: ProviderAdmission, healthOf: ReadonlyMap<string, TargetHealth>, counted: CountedAhead): Promise<UpstreamAttempt | undefined> {
      if (!(await claim(deployment.id, healthOf))) return undefined;
      for (const key of rotatedKeys(deployment, excludedKeys, healthOf)) {
        if (!(await claim(key.id, healthOf))) continue;
        const release = counted.take(deployment.id) ?? (await health.acquire(deployment.id, now()));
        metrics.deploymentAttempts.inc({ deployment: deployment.id, key: key.id });
        return attemptOn(deployment, key, admission, release, healthOf);
      }
      return undefined;
    }

    /** An attempt in `pool`, or the reason there is none. */
    async function choose(pool: Pool, signal: AbortSignal): Promise<UpstreamAttempt | SluiceError> {
      const candidates = pool.deployments.filter((deployment) => !excludedDeployments.has(deployment.id));
      const ids = [...new Set(candidates.flatMap((deployment) => [deployment.id, ...deployment.keys.map((key) => key.id)]))];
      // A pool of one sends its request to that deployment unless it is disabled: its in-flight
      // count is taken with the read, one step of the store (one Redis round trip in a cluster)
      // instead of two, and given back if the request does not go after all (decision 0031).
      const only = pool.deployments.length === 1 ? candidates[0] : undefined;
      let read: ReadonlyMap<string, TargetHealth>;
      const counted = new CountedAhead();
      if (only !== undefined) {
        const both = await health.readAndAcquire(ids, only.id, now());
        read = both.health;
        counted.hold(only.id, both.release);
      } else {
        read = await health.read(ids, now());
      }
      const healthOf = pool.deployments.length === 1 ? asPoolOfOne(read) : read;
      const isOpen = (deployment: PoolDeployment) => usable(healthOf.get(deployment.id)) && deployment.keys.some((key) => !excludedKeys.has(key.id) && usable(healthOf.get(key.id)));
      const passedOver = new Set<string>();
      const refusedBudget = new Map<string, { deployment: PoolDeployment; retryAfterMs: number }>();
      try {
        for (;;) {
          const available = candidates.filter((deployment) => isOpen(deployment) && !passedOver.has(deployment.id));
          if (available.length === 0) break;
          const priority = Math.min(...available.map((deployment) => deployment.priority));
          const chosen = pick(
            available.filter((deployment) => deployment.priority === priority),
            pool.strategy,
            healthOf,
          );
          if (chosen === undefined) break;
          passedOver.add(chosen.id);
          const admission = await quotas.tryAdmit(chosen.provider, request.estimatedPromptTokens, now());
          if (!admission.admitted) {
            refusedBudget.set(chosen.id, { deployment: chosen, retryAfterMs: admission.retryAfterMs });
            continue;
          }
          const attempt = await begin(chosen, admission, healthOf, counted);
          if (attempt) return attempt;
          // Its probe or every key was taken by another request meanwhile: the budget is not used.
          await admission.settle(0);
        }
      } finally {
        // A count no attempt took ends here: the request goes nowhere, or waits in line for budget
        // below, which is not being in flight.
        counted.giveBack();
      }
      // Every open deployment is out of budget: wait in line for the one that refills first.
      const soonest = [...refusedBudget.values()].sort((a, b) => a.retryAfterMs - b.retryAfterMs)[0];
      if (soonest) {
        const timeoutMs = Math.max(0, Math.min(settings.queueTimeoutMs, settings.retry.maxTotalMs - (now() - startedAt)));
        try {
          const admission = await quotas.waitForAdmission(soonest.deployment.provider, request.estimatedPromptTokens, { timeoutMs, signal });
          const attempt = await begin(soonest.deployment, admission, healthOf, counted);
          if (attempt) return attempt;
          await admission.settle(0);
        } catch (error) {
          if (signal.aborted) throw signal.reason;
          if (error instanceof SluiceError) return error;
          throw error;
        }
      }
      return unavailable(pool, candidates, healthOf);
    }

    /** 503 pool_unavailable, with the wait until the first deployment may be tried again. */
    function unavailable(pool: Pool, candidates: readonly PoolDeployment[], healthOf: ReadonlyMap<string, TargetHealth>): SluiceError {
      const at = now();
      const until = (id: string) => healthOf.get(id)?.coolingUntil;
      const waits = candidates.flatMap((deployment) => {
        const own = until(deployment.id);
        const keys = deployment.keys.map((key) => until(key.id)).filter((value): value is number => value !== undefined);
        const keyWait = keys.length === deployment.keys.length && keys.length > 0 ? Math.min(...keys) : undefined;
        const wait = Math.max(own ?? at, keyWait ?? at) - at;
        return wait > 0 ? [wait] : [];
      });
      const retryAfterMs = waits.length > 0 ? Math.min(...waits) : settings.cooldown.initialMs;
      return new SluiceError('pool_unavailable', {
        message: `Every deployment of "${pool.name}" is cooling down or out of service (GET /admin/deployments shows which); retry after ${Math.ceil(retryAfterMs / 1000).toString()} s.`,
        retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
      });
    }

    /**
     * The first attempt of a pool of one, chosen in the same turn when both stores can answer so:
     * health from this process's memory (a single node's, or a cluster node's recent read of
     * Redis) and a provider without a budget. The request then reaches the upstream with no
     * promise on its way (decision 0046). The choice is the one `choose` makes; undefined when this
     * way does not apply, and `choose` decides from the start (the in-flight count taken here is
     * given back first).
     */
    function firstInSameTurn(): UpstreamAttempt | undefined {
      const pool = route.pools[0];
      const deployment = pool?.deployments.length === 1 ? pool.deployments[0] : undefined;
      if (attempted || poolIndex !== 0 || deployment === undefined || settings.retry.maxAttempts < 1 || health.readAndAcquireNow === undefined) return undefined;
      const admission = quotas.admitsWithoutBudget(deployment.provider);
      if (admission === undefined) return undefined;
      const ids = deployment.keys.length === 1 && deployment.keys[0] !== undefined ? [deployment.id, deployment.keys[0].id] : [...new Set([deployment.id, ...deployment.keys.map((key) => key.id)])];
      const both = health.readAndAcquireNow(ids, deployment.id, now());
      if (both === undefined) return undefined;
      const healthOf = asPoolOfOne(both.health);
      // In a pool of one every state but `disabled` reads as healthy: no probe is claimed.
      const key = usable(healthOf.get(deployment.id)) ? rotatedKeys(deployment, excludedKeys, healthOf)[0] : undefined;
      if (key === undefined) {
        both.release();
        return undefined;
      }
      metrics.deploymentAttempts.inc({ deployment: deployment.id, key: key.id });
      attempted = true;
      attemptsInPool = 1;
      return attemptOn(deployment, key, admission, both.release, healthOf);
    }

    /** The next attempt, chosen by `choose` pool after pool within the retry bounds. */
    async function nextChosen(signal: AbortSignal): Promise<UpstreamAttempt | undefined> {
      for (;;) {
        if (signal.aborted) throw signal.reason;
        if (attempted && now() - startedAt >= settings.retry.maxTotalMs) return undefined;
        const pool = route.pools[poolIndex];
        if (pool === undefined) {
          if (attempted) return undefined;
          throw firstRefusal ?? new SluiceError('pool_unavailable');
        }
        if (attemptsInPool >= settings.retry.maxAttempts) {
          poolIndex += 1;
          attemptsInPool = 0;
          continue;
        }
        const choice = await choose(pool, signal);
        if (choice instanceof SluiceError) {
          firstRefusal ??= choice;
          poolIndex += 1;
          attemptsInPool = 0;
          continue;
        }
        attempted = true;
        attemptsInPool += 1;
        return choice;
      }
    }

    return { first: firstInSameTurn, next: nextChosen };
  }

  async function describe(pools: readonly Pool[]): Promise<DeploymentView[]> {
    const byId = new Map<string, { deployment: PoolDeployment; pools: string[] }>();
    for (const pool of pools) {
      for (const deployment of pool.deployments) {
        const found = byId.get(deployment.id);
        if (found) found.pools.push(pool.name);
        else byId.set(deployment.id, { deployment, pools: [pool.name] });
      }
    }
    const entries = [...byId.values()];
    const ids = [...new Set(entries.flatMap(({ deployment }) => [deployment.id, ...deployment.keys.map((key) => key.id)]))];
    const at = now();
    const healthOf = await health.read(ids, at);
    const iso = (ms: number | undefined) => (ms === undefined ? {} : { cooldownUntil: new Date(ms).toISOString() });
    return entries.map(({ deployment, pools: names }) => {
      const own = healthOf.get(deployment.id);
      return {
        id: deployment.id,
        provider: deployment.provider,
        model: deployment.model,
        pools: names,
        state: own?.state ?? 'healthy',
        ...iso(own?.coolingUntil),
        consecutiveFailures: own?.consecutiveFailures ?? 0,
        ...(own?.lastErrorCode !== undefined ? { lastErrorCode: own.lastErrorCode } : {}),
        inFlight: own?.inFlight ?? 0,
        ...stats.summary(deployment.id),
        keys: deployment.keys.map((key) => {
          const keyHealth = healthOf.get(key.id);
          return {
            id: key.id,
            state: keyHealth?.state ?? 'healthy',
            ...iso(keyHealth?.coolingUntil),
            ...(keyHealth?.lastErrorCode !== undefined ? { lastErrorCode: keyHealth.lastErrorCode } : {}),
            ...stats.summary(key.id),
          };
        }),
      };
    });
  }

  return { open, describe, reset: (id) => health.reset(id) };
}

/** An in-flight count taken ahead of the attempt it is for (readAndAcquire), until an attempt takes it. */
class CountedAhead {
  #id: string | undefined;
  #release: (() => void) | undefined;

  hold(id: string, release: () => void): void {
    this.#id = id;
    this.#release = release;
  }

  /** The release of the count held for `id`, now the attempt's to call; undefined when none is held. */
  take(id: string): (() => void) | undefined {
    if (this.#id !== id) return undefined;
    const release = this.#release;
    this.#id = undefined;
    this.#release = undefined;
    return release;
  }

  /** Ends the count no attempt took. */
  giveBack(): void {
    const release = this.#release;
    this.#id = undefined;
    this.#release = undefined;
    release?.();
  }
}

/**
 * The attempts of a fixed list of candidates, in order, once each, with no health, budget or
 * bounds: for a Generation built without a pool router (its unit tests, and callers that already
 * chose their upstream).
 */
export function attemptsInOrder(candidates: readonly { readonly adapter: ProviderAdapter; readonly model: string; readonly timeouts: Timeouts }[]): AttemptSource {
  let index = 0;
  return {
    next() {
      const candidate = candidates[index];
      index += 1;
      if (candidate === undefined) return undefined;
      return {
        ...candidate,
        deployment: `${candidate.adapter.id}/${candidate.model}`,
        succeeded: () => undefined,
        failed: () => Promise.resolve(),
        ended: () => undefined,
      };
    },
  };
}
