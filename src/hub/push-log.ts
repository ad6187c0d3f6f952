// What a hub keeps for replay, and the one rule for reading it back. The rule (mergeReplay) is
// storage-neutral, so the cluster hub applies it to the two lists it reads from Redis; the memory
// push log is the single-node storage: one log per user plus one broadcast log, each cut to the
// retention count and age, and users left with nothing retained are forgotten.
import type { HubRetention, PushMessage, PushTarget } from './hub.js';

/** A retained message with its id as a number, so ordering never parses strings. */
export interface RetainedPush {
  readonly seq: number;
  readonly message: PushMessage;
}

/**
 * The replay rule: the messages of `own` (pushed to the user) and `broadcast` (pushed to all)
 * with seq > `afterSeq`, merged in seq order, each once, cut to the newest `limit`. Both lists
 * must be in ascending seq order (as every log appends them).
 */
export function mergeReplay(own: readonly RetainedPush[], broadcast: readonly RetainedPush[], afterSeq: number, limit: number): PushMessage[] {
  const merged: RetainedPush[] = [];
  let i = firstAfter(own, afterSeq);
  let j = firstAfter(broadcast, afterSeq);
  while (i < own.length || j < broadcast.length) {
    const a = own[i];
    const b = broadcast[j];
    if (a && (!b || a.seq < b.seq)) {
      merged.push(a);
      i++;
    } else if (b && (!a || b.seq < a.seq)) {
      merged.push(b);
      j++;
    } else if (a) {
      // The same message in both lists (a cluster log may hold it twice): once is enough.
      merged.push(a);
      i++;
      j++;
    }
  }
  return merged.slice(Math.max(0, merged.length - limit)).map((entry) => entry.message);
}

function firstAfter(entries: readonly RetainedPush[], afterSeq: number): number {
  // Binary search: logs are in ascending seq order.
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((entries[middle]?.seq ?? Infinity) <= afterSeq) low = middle + 1;
    else high = middle;
  }
  return low;
}

export interface MemoryPushLogOptions {
  /** Milliseconds since the epoch; must never go backwards. */
  readonly now: () => number;
  readonly retention: HubRetention;
  /**
   * Users whose messages all aged out are forgotten by a sweep over every log, run at most this
   * often, during append or read (no timer to clean up). Default: the retention age, at most
   * 30 000 ms.
   */
  readonly sweepIntervalMs?: number;
}

export interface MemoryPushLog {
  /** Retains `message` (id `seq`, greater than any before it) for the target's users. */
  append(target: PushTarget, seq: number, message: PushMessage): void;
  /** {@link mergeReplay} over what `userId` has retained. */
  since(userId: string, afterSeq: number): PushMessage[];
  /** Users with at least one message retained (for tests and metrics). */
  readonly retainedUsers: number;
  /** Messages in the broadcast log (for tests and metrics). */
  readonly retainedBroadcasts: number;
}

export function createMemoryPushLog(options: MemoryPushLogOptions): MemoryPushLog {
  const { now, retention } = options;
  const sweepIntervalMs = options.sweepIntervalMs ?? Math.min(retention.ageMs, 30_000);
  const keeps = retention.count > 0 && retention.ageMs > 0;
  const byUser = new Map<string, RetainedPush[]>();
  const broadcast: RetainedPush[] = [];
  let nextSweepAt = now() + sweepIntervalMs;

  /** Drops entries over the count and older than the age, oldest first. */
  function prune(entries: RetainedPush[], at: number): void {
    let drop = Math.max(0, entries.length - retention.count);
    while (drop < entries.length && at - (entries[drop]?.message.pushedAt ?? at) > retention.ageMs) drop++;
    if (drop > 0) entries.splice(0, drop);
  }

  function sweepIfDue(at: number): void {
    if (at < nextSweepAt) return;
    nextSweepAt = at + sweepIntervalMs;
    prune(broadcast, at);
    for (const [userId, entries] of byUser) {
      prune(entries, at);
      if (entries.length === 0) byUser.delete(userId);
    }
  }

  return {
    append(target, seq, message) {
      const at = now();
      sweepIfDue(at);
      if (!keeps) return;
      const entry: RetainedPush = { seq, message };
      if ('all' in target) {
        broadcast.push(entry);
        prune(broadcast, at);
        return;
      }
      // Every named user's log holds the same entry object: a push to 1000 users is stored once.
      for (const userId of new Set(target.users)) {
        let entries = byUser.get(userId);
        if (!entries) byUser.set(userId, (entries = []));
        entries.push(entry);
        prune(entries, at);
      }
    },
    since(userId, afterSeq) {
      const at = now();
      sweepIfDue(at);
      const own = byUser.get(userId) ?? [];
      prune(own, at);
      if (own.length === 0) byUser.delete(userId);
      prune(broadcast, at);
      return mergeReplay(own, broadcast, afterSeq, retention.count);
    },
    get retainedUsers() {
      return byUser.size;
    },
    get retainedBroadcasts() {
      return broadcast.length;
    },
  };
}
