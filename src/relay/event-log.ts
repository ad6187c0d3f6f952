// The log of one generation: its events numbered by seq, the approximate bytes an encoder writes
// for them (what slow-client accounting compares with `maxBufferedBytes`), whether the answer
// exists yet, and whether the log is finished. A Generation appends what its upstream produced;
// a follower on another node (cluster mode) appends what it read from Redis. Both then read the
// same numbers: a client resumed on another node is charged the bytes it would have been charged
// on the producing one.
import { isTerminal, type StreamEvent } from '../contract/stream-event.js';

/**
 * Roughly what an encoder writes around one event (an OpenAI chunk's frame is about 220 bytes).
 * Counted with every event, so that a client left behind on token-sized deltas reaches
 * `maxBufferedBytes` at about the bytes it really left unread, not at 200 times as many.
 */
const eventFramingBytes = 200;

/** Approximate encoded bytes of one event (its text plus framing), for slow-client accounting. */
export function approximateEncodedBytes(event: StreamEvent): number {
  return eventFramingBytes + (event.type === 'text-delta' ? event.text.length : event.type === 'tool-call-delta' ? (event.argumentsDelta?.length ?? 0) : 0);
}

/**
 * True for the events that are the answer itself (text, tool-call and relayed upstream events):
 * once one is logged no fallback is possible and errors can no longer be HTTP statuses. The
 * others frame the answer.
 */
function isAnswer(event: StreamEvent): boolean {
  switch (event.type) {
    case 'start':
    case 'usage':
    case 'end':
    case 'error':
      return false;
    default:
      return true;
  }
}

export class EventLog {
  readonly #events: StreamEvent[] = [];
  /** `#bytesBefore[i]` is the approximate encoded bytes of events[0..i); one entry more than events. */
  readonly #bytesBefore: number[] = [0];
  #committed = false;
  #finished = false;

  /** `events[seq]` is the event with that sequence number. The array grows in place; callers must not change it. */
  get events(): readonly StreamEvent[] {
    return this.#events;
  }

  get length(): number {
    return this.#events.length;
  }

  /** True once an answer event (a text, tool-call or relayed upstream event) is logged. */
  get committed(): boolean {
    return this.#committed;
  }

  /** True once a terminal event (`end` or `error`) is logged. */
  get finished(): boolean {
    return this.#finished;
  }

  /**
   * Logs `event` with the next seq. Nothing follows a terminal event: after one, `append` logs
   * nothing and returns false.
   */
  append(event: StreamEvent): boolean {
    if (this.#finished) return false;
    this.#events.push(event);
    this.#bytesBefore.push((this.#bytesBefore[this.#bytesBefore.length - 1] ?? 0) + approximateEncodedBytes(event));
    if (isAnswer(event)) this.#committed = true;
    if (isTerminal(event)) this.#finished = true;
    return true;
  }

  /**
   * Approximate encoded bytes (text plus framing) of the events from `seq` to the end of the log.
   * `seq` is a reader's cursor, from 0 to `length` (0 bytes at `length`).
   */
  bytesFrom(seq: number): number {
    return (this.#bytesBefore[this.#events.length] ?? 0) - (this.#bytesBefore[seq] ?? 0);
  }
}
