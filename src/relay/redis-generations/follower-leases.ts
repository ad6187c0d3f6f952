// Leases that followers on other nodes hold on this node's generations. A client following a
// generation from another node must keep it alive exactly as a client connected here would: each
// lease is a subscription to the generation, renewed by the follower's periodic `attach` and
// ended by its `detach`, or, when its node died and stopped renewing it, after `3 × followCheckMs`.
import type { Generation } from '../generation.js';

interface Lease {
  release: () => void;
  expiresAt: number;
}

export class FollowerLeases {
  readonly #leases = new Map<string, Lease>();
  readonly #now: () => number;
  readonly #leaseMs: number;
  readonly #timer: NodeJS.Timeout;

  /** Starts the timer that ends expired leases every `followCheckMs` (it does not keep the process alive). */
  constructor(now: () => number, followCheckMs: number) {
    this.#now = now;
    this.#leaseMs = followCheckMs * 3;
    this.#timer = setInterval(() => this.#expire(), followCheckMs);
    this.#timer.unref();
  }

  /** Takes or renews `viewer`'s lease on generation `id`; a finished generation needs none. */
  attach(id: string, viewer: string, generation: Generation): void {
    if (generation.finished) return;
    const key = leaseKey(id, viewer);
    const lease = this.#leases.get(key);
    if (lease) lease.expiresAt = this.#now() + this.#leaseMs;
    else this.#leases.set(key, { release: generation.subscribe(() => undefined), expiresAt: this.#now() + this.#leaseMs });
  }

  /** Ends `viewer`'s lease on generation `id`, if it holds one. */
  detach(id: string, viewer: string): void {
    const key = leaseKey(id, viewer);
    const lease = this.#leases.get(key);
    this.#leases.delete(key);
    lease?.release();
  }

  /** Stops the timer and ends every lease (shutdown). */
  close(): void {
    clearInterval(this.#timer);
    for (const lease of this.#leases.values()) lease.release();
    this.#leases.clear();
  }

  /** Leases of remote followers expire when their node stops renewing them (it died). */
  #expire(): void {
    const time = this.#now();
    for (const [key, lease] of this.#leases) {
      if (lease.expiresAt > time) continue;
      this.#leases.delete(key);
      lease.release();
    }
  }
}

function leaseKey(id: string, viewer: string): string {
  return `${id}|${viewer}`;
}
