// The log of one generation: its events numbered by seq, the approximate bytes an encoder writes
// for them (what slow-client accounting compares with `maxBufferedBytes`), whether the answer
// exists yet, and whether the log is finished. A Generation appends what its upstream produced;
// a follower on another node (cluster mode) appends what it read from Redis. Both then read the
// same numbers: a client resumed on another node is charged the bytes it would have been charged
// on the producing one.
//
// A finished log that is kept (a resumable generation, findable for generations.retentionMs) is
// packed a second after it finished: its texts in one string, not an object and a string per token
// (about 88 bytes a token in the heap, against the text and 4 bytes), until something reads its
// events again (docs/decisions/0047-a-kept-generation-is-packed.md).
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

/** How long after its terminal event a kept log is packed: past the reads of its live followers. */
export const packDelayMs = 1000;

/** How often due logs are packed, and at most how many a tick (about 10 µs each for 200 tokens). */
const packTickMs = 250;
const maxPacksPerTick = 500;

/**
 * A finished log's events, packed: every text delta's text in `text`, one after another, with
 * `textEnds[seq]` the length of the texts up to and including the event `seq`; every other event
 * (start, usage, tool calls, the terminal event …) as it was, with its seq.
 */
interface PackedEvents {
  readonly length: number;
  readonly text: string;
  readonly textEnds: Uint32Array;
  readonly others: ReadonlyArray<readonly [number, StreamEvent]>;
}

function pack(events: readonly StreamEvent[]): PackedEvents {
  const texts: string[] = [];
  const textEnds = new Uint32Array(events.length);
  const others: (readonly [number, StreamEvent])[] = [];
  let textLength = 0;
  for (let seq = 0; seq < events.length; seq++) {
    const event = events[seq] as StreamEvent;
    if (event.type === 'text-delta') {
      texts.push(event.text);
      textLength += event.text.length;
    } else {
      others.push([seq, event]);
    }
    textEnds[seq] = textLength;
  }
  return { length: events.length, text: texts.join(''), textEnds, others };
}

function unpack({ length, text, textEnds, others }: PackedEvents): StreamEvent[] {
  const events = new Array<StreamEvent>(length);
  for (const [seq, event] of others) events[seq] = event;
  let from = 0;
  for (let seq = 0; seq < length; seq++) {
    const to = textEnds[seq] ?? from;
    if (events[seq] === undefined) events[seq] = { type: 'text-delta', text: text.slice(from, to) };
    from = to;
  }
  return events;
}

export class EventLog {
  /** The events, or undefined while they are packed. */
  #events: StreamEvent[] | undefined = [];
  /** `#bytesBefore[i]` is the approximate encoded bytes of events[0..i); one entry more than events. Undefined while packed. */
  #bytesBefore: number[] | undefined = [0];
  #packed: PackedEvents | undefined;
  #committed = false;
  #finished = false;
  /** Whether the log is packed once finished (packWhenFinished). */
  #packs = false;
  /** Whether the log waits in the packing queue. */
  #queued = false;

  /** Logs waiting to be packed, by when they are due (ms, performance.now()): in that order. */
  static readonly #queue: { log: EventLog; due: number }[] = [];
  static #timer: NodeJS.Timeout | undefined;

  /**
   * `events[seq]` is the event with that sequence number. The array grows in place; callers must
   * not change it. On a packed log this unpacks it (it is packed again later).
   */
  get events(): readonly StreamEvent[] {
    return this.#events ?? this.#unpack();
  }

  get length(): number {
    return this.#events?.length ?? this.#packed?.length ?? 0;
  }

  /** True while the events are packed (reading them unpacks them). */
  get packed(): boolean {
    return this.#packed !== undefined;
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
    // Only a finished log is ever packed, so a log that may append is never packed.
    const events = this.#events;
    const bytesBefore = this.#bytesBefore;
    if (this.#finished || events === undefined || bytesBefore === undefined) return false;
    events.push(event);
    bytesBefore.push((bytesBefore[bytesBefore.length - 1] ?? 0) + approximateEncodedBytes(event));
    if (isAnswer(event)) this.#committed = true;
    if (isTerminal(event)) {
      this.#finished = true;
      if (this.#packs) this.#queuePack();
    }
    return true;
  }

  /**
   * Approximate encoded bytes (text plus framing) of the events from `seq` to the end of the log.
   * `seq` is a reader's cursor, from 0 to `length` (0 bytes at `length`).
   */
  bytesFrom(seq: number): number {
    if (this.#bytesBefore === undefined) this.#unpack();
    const bytesBefore = this.#bytesBefore ?? [0];
    return (bytesBefore[this.length] ?? 0) - (bytesBefore[seq] ?? 0);
  }

  /**
   * Packs the log {@link packDelayMs} after its terminal event, and again that long after each
   * read that unpacked it: for a log kept after it finished, which is rarely read again.
   */
  packWhenFinished(): void {
    this.#packs = true;
    if (this.#finished) this.#queuePack();
  }

  #queuePack(): void {
    if (this.#queued) return;
    this.#queued = true;
    EventLog.#queue.push({ log: this, due: performance.now() + packDelayMs });
    EventLog.#timer ??= setInterval(EventLog.#packDue, packTickMs).unref();
  }

  static readonly #packDue = (): void => {
    const queue = EventLog.#queue;
    const now = performance.now();
    let taken = 0;
    while (taken < queue.length && taken < maxPacksPerTick && (queue[taken]?.due ?? Infinity) <= now) {
      const log = (queue[taken] as { log: EventLog }).log;
      log.#queued = false;
      log.#pack();
      taken++;
    }
    queue.splice(0, taken);
    if (queue.length === 0) {
      clearInterval(EventLog.#timer);
      EventLog.#timer = undefined;
    }
  };

  #pack(): void {
    if (this.#events === undefined) return;
    this.#packed = pack(this.#events);
    this.#events = undefined;
    this.#bytesBefore = undefined;
  }

  #unpack(): StreamEvent[] {
    const events = this.#packed === undefined ? [] : unpack(this.#packed);
    const bytesBefore = new Array<number>(events.length + 1);
    bytesBefore[0] = 0;
    for (let seq = 0; seq < events.length; seq++) bytesBefore[seq + 1] = (bytesBefore[seq] ?? 0) + approximateEncodedBytes(events[seq] as StreamEvent);
    this.#events = events;
    this.#bytesBefore = bytesBefore;
    this.#packed = undefined;
    if (this.#packs) this.#queuePack();
    return events;
  }
}
