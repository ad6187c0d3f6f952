// The timers of many long-lived streams (the hub's SSE connections), shared, so that an idle
// connection keeps no timer of its own: one interval writes the streams' heartbeats, a slice of
// them per tick (decision 0042), and one timeout ends each stream at its maximum age (decision
// 0029). Both stop when their last stream leaves, and neither keeps the process alive.

/** A stream that {@link StreamTimers} serves. Neither method may throw. */
export interface TimedStream {
  /** Writes a heartbeat, unless the stream cannot take one now. */
  beat(): void;
  /** The stream reached its maximum age; it has already left the timers. */
  expire(): void;
}

/**
 * How often the heartbeat timer ticks (ms) when the interval is long enough: each tick beats the
 * streams of one slice. Writing every stream's heartbeat in one turn of the event loop stalls
 * everything else on the node for as long as the writes take (about 16 µs a stream on loopback:
 * 0.8 s for 50 000 streams), every interval; in slices, a stall is a sixtieth of that at 15 s.
 */
export const heartbeatTickMs = 250;

/** At most this many slices, however long the interval: a tick walks every stream's entry. */
const maxHeartbeatSlices = 60;

/**
 * The open streams of one route and the two timers that serve them all. A stream joins once its
 * head is written, never before: a heartbeat must not be what writes a head while a route may
 * still answer with an error status. It then gets a heartbeat within one interval, and one every
 * interval after that, as with an interval of its own.
 *
 * The heartbeat is spread over the interval: the timer ticks `slices` times an interval (one tick
 * every heartbeatTickMs, or once an interval when that is shorter than two ticks) and each tick
 * beats the streams of one slice, a stream's slice being the millisecond it joined modulo
 * `slices`. That is fixed for the stream's life and needs no memory of its own, and streams that
 * join together within a few milliseconds (a reconnect storm) still fall into different slices.
 *
 * Streams are kept in one list per maximum age, in the order they joined, which is the order in
 * which the streams of one list are due (as Node keeps its timers of one duration): the heartbeat
 * walks every list, and the age timer waits for the earliest head among them. Ages in whole
 * seconds (connectionAgeMs) keep the lists to a few hundred however many streams there are.
 */
export class StreamTimers<T extends TimedStream> {
  readonly #heartbeatMs: number;
  /** Ticks per heartbeat interval; a stream is beaten on the tick of its slice. */
  readonly #slices: number;
  /** The slice the next tick beats. */
  #nextSlice = 0;
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
    this.#slices = Math.max(1, Math.min(maxHeartbeatSlices, Math.floor(heartbeatMs / heartbeatTickMs)));
  }

  /** Ticks per heartbeat interval (1: every stream on one tick). */
  get slices(): number {
    return this.#slices;
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
    // Whole milliseconds, rounded down: slices × tick never exceeds the interval.
    if (this.#heartbeatMs > 0) this.#heartbeat ??= setInterval(() => this.#beat(), Math.floor(this.#heartbeatMs / this.#slices)).unref();
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
    const slices = this.#slices;
    const slice = this.#nextSlice;
    this.#nextSlice = (slice + 1) % slices;
    // A stream that ends while others beat leaves its list; a Map's iteration allows that.
    if (slices === 1) {
      for (const list of this.#lists.values()) for (const stream of list.keys()) stream.beat();
      return;
    }
    for (const list of this.#lists.values()) {
      for (const [stream, joinedAt] of list) if (joinedAt % slices === slice) stream.beat();
    }
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
