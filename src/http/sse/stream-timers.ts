// The timers of many long-lived streams (the hub's SSE connections), shared, so that an idle
// connection keeps no timer of its own: one interval writes every stream's heartbeat, as a
// hand-written SSE endpoint does, and one timeout ends each stream at its maximum age (decision
// 0029). Both stop when their last stream leaves, and neither keeps the process alive.

/** A stream that {@link StreamTimers} serves. Neither method may throw. */
export interface TimedStream {
  /** Writes a heartbeat, unless the stream cannot take one now. */
  beat(): void;
  /** The stream reached its maximum age; it has already left the timers. */
  expire(): void;
}

/**
 * The open streams of one route and the two timers that serve them all. A stream joins once its
 * head is written, never before: a heartbeat must not be what writes a head while a route may
 * still answer with an error status. It then gets a heartbeat within one interval, and one every
 * interval after that, as with an interval of its own.
 *
 * Streams are kept in one list per maximum age, in the order they joined, which is the order in
 * which the streams of one list are due (as Node keeps its timers of one duration): the heartbeat
 * walks every list, and the age timer waits for the earliest head among them. Ages in whole
 * seconds (connectionAgeMs) keep the lists to a few hundred however many streams there are.
 */
export class StreamTimers<T extends TimedStream> {
  readonly #heartbeatMs: number;
  /**
   * By maximum age (ms; 0 for none): each stream of that age and when it joined, in whole
   * monotonic milliseconds (small integers, which V8 keeps without a box of their own).
   */
  readonly #lists = new Map<number, Map<T, number>>();
  #heartbeat: NodeJS.Timeout | undefined;
  #ageTimer: NodeJS.Timeout | undefined;
  /** When the age timer fires (monotonic ms); Infinity while it is not set. */
  #ageTimerDue = Infinity;

  /** `heartbeatMs` 0 turns heartbeats off. */
  constructor(heartbeatMs: number) {
    this.#heartbeatMs = heartbeatMs;
  }

  /** Streams held. */
  get size(): number {
    let size = 0;
    for (const list of this.#lists.values()) size += list.size;
    return size;
  }

  /** True while a timer is set: only while some stream is held. */
  get ticking(): boolean {
    return this.#heartbeat !== undefined || this.#ageTimer !== undefined;
  }

  /** Adds a stream whose head is written; it expires `ageMs` from now (0: never). */
  add(stream: T, ageMs: number): void {
    const joinedAt = Math.floor(performance.now());
    let list = this.#lists.get(ageMs);
    if (!list) this.#lists.set(ageMs, (list = new Map<T, number>()));
    list.set(stream, joinedAt);
    if (this.#heartbeatMs > 0) this.#heartbeat ??= setInterval(() => this.#beat(), this.#heartbeatMs).unref();
    if (ageMs > 0 && joinedAt + ageMs < this.#ageTimerDue) this.#setAgeTimer(joinedAt + ageMs);
  }

  /** Forgets a stream added with `ageMs`; idempotent. The timers stop with the last stream. */
  delete(stream: T, ageMs: number): void {
    const list = this.#lists.get(ageMs);
    if (!list?.delete(stream)) return;
    if (list.size === 0) this.#lists.delete(ageMs);
    this.#stopWhenEmpty();
  }

  #stopWhenEmpty(): void {
    if (this.#lists.size > 0) return;
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    clearTimeout(this.#ageTimer);
    this.#ageTimer = undefined;
    this.#ageTimerDue = Infinity;
  }

  #beat(): void {
    // A stream that ends while others beat leaves its list; a Map's iteration allows that.
    for (const list of this.#lists.values()) for (const stream of list.keys()) stream.beat();
  }

  #setAgeTimer(due: number): void {
    clearTimeout(this.#ageTimer);
    this.#ageTimerDue = due;
    this.#ageTimer = setTimeout(() => this.#expire(), Math.max(1, due - performance.now())).unref();
  }

  #expire(): void {
    this.#ageTimer = undefined;
    this.#ageTimerDue = Infinity;
    const now = performance.now();
    const expired: T[] = [];
    let nextDue = Infinity;
    for (const [ageMs, list] of this.#lists) {
      if (ageMs === 0) continue;
      for (const [stream, joinedAt] of list) {
        if (joinedAt + ageMs > now) {
          nextDue = Math.min(nextDue, joinedAt + ageMs);
          break;
        }
        list.delete(stream);
        expired.push(stream);
      }
      if (list.size === 0) this.#lists.delete(ageMs);
    }
    if (nextDue < Infinity) this.#setAgeTimer(nextDue);
    this.#stopWhenEmpty();
    for (const stream of expired) stream.expire();
  }
}
