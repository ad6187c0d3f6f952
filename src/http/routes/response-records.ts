// Stored responses of the Responses API, as the routes use them: the row written when a response
// starts, its outcome written when its generation finishes (with the event log of a background
// response, for replays), and reading back what was stored, checked, for GET, previous_response_id
// and resumes. A read waits for an outcome this node is still writing, so a client that saw
// `response.completed` and asks at once gets the completed response.
import { z } from 'zod';
import { SluiceError } from '../../errors/sluice-error.js';
import type { Principal } from '../../contract/principal.js';
import type { StreamEvent, StreamEventType } from '../../contract/stream-event.js';
import type { Generation } from '../../relay/generation.js';
import { responseFromLog } from '../../relay/encoders/responses-events.js';
import type { ResponseIdentity, ResponseObject, ResponseRequestEcho } from '../../relay/encoders/responses-object.js';
import type { ResponseRecord, ResponseStore } from '../../store/store.js';
import { inputItemsSchema, toolChoiceSchema, type InputItem } from './responses-schema.js';

export interface ResponseRecordsDependencies {
  store: ResponseStore;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** An outcome could not be stored (logged; the answer itself is not affected). */
  onStoreError: (error: unknown, responseId: string) => void;
}

export interface ResponseRecords {
  /** Stores a response that has just started, as its first snapshot. Throws `store_unavailable`. */
  create(identity: ResponseIdentity, generation: Generation, principal: Principal, items: readonly InputItem[]): Promise<void>;
  /**
   * The caller's stored response: `response_not_found` when there is none, or it is someone
   * else's (an admin may read any unless `ownerOnly`), naming `param` when given.
   */
  findOwned(principal: Principal, id: string, options?: { ownerOnly?: boolean; param?: string }): Promise<ResponseRecord>;
  /** What a response repeats, as it was stored. */
  identityOf(record: ResponseRecord): ResponseIdentity;
  /** The items a response continues from: its input, then its output. */
  continuation(record: ResponseRecord): InputItem[];
  /** The event log of a finished background response, or undefined when none was stored. */
  eventsOf(record: ResponseRecord): StreamEvent[] | undefined;
}

/** The response object as a finished response is answered and stored: `completed_at` added. */
export function finishedObject(response: ResponseObject, finishedAtMs: number): ResponseObject {
  return { ...response, completed_at: response.status === 'completed' ? Math.floor(finishedAtMs / 1000) : null };
}

export function createResponseRecords(dependencies: ResponseRecordsDependencies): ResponseRecords {
  const { store, now } = dependencies;
  /** Outcomes this node is writing, by response id. */
  const writing = new Map<string, Promise<void>>();

  function recordOutcome(identity: ResponseIdentity, generation: Generation): void {
    const finishedAt = now();
    const response = finishedObject(responseFromLog(identity, generation.events), finishedAt);
    // Only a background response can be streamed again, so only its log is kept.
    const events = identity.background ? generation.events : undefined;
    const write = store
      .finish(identity.id, { status: response.status, completedAt: finishedAt, response, ...(events !== undefined ? { events } : {}) })
      .then(
        () => undefined,
        (error: unknown) => dependencies.onStoreError(error, identity.id),
      )
      .finally(() => writing.delete(identity.id));
    writing.set(identity.id, write);
  }

  return {
    async create(identity, generation, principal, items) {
      const createdAt = identity.createdAt * 1000;
      try {
        await store.create({
          id: identity.id,
          userId: principal.userId,
          generationId: generation.id,
          model: identity.model,
          status: identity.background ? 'queued' : 'in_progress',
          background: identity.background,
          createdAt,
          ...(identity.request.previous_response_id !== null ? { previousResponseId: identity.request.previous_response_id } : {}),
          request: identity.request,
          input: items,
          response: { ...responseFromLog(identity, []), completed_at: null },
        });
      } catch (error) {
        throw new SluiceError('store_unavailable', { message: 'The response could not be stored (store: false answers without storing it).', cause: error });
      }
      // Registered in the same turn as the terminal event is logged, before any client is told
      // of it (listeners run on the next turn), so a read right after it waits for this write.
      void generation.done.then(() => recordOutcome(identity, generation));
    },

    async findOwned(principal, id, options = {}) {
      await writing.get(id);
      const record = await store.get(id);
      const mayRead = record !== undefined && (record.userId === principal.userId || (principal.role === 'admin' && options.ownerOnly !== true));
      if (!record || !mayRead) {
        throw new SluiceError('response_not_found', {
          ...(options.param !== undefined ? { param: options.param } : {}),
          message: `${options.param !== undefined ? `${options.param}: ` : ''}no stored response ${id} for this user: it was never stored (store: false), was deleted, or belongs to someone else.`,
        });
      }
      return record;
    },

    identityOf(record) {
      return { id: record.id, createdAt: Math.floor(record.createdAt / 1000), model: record.model, background: record.background, request: parseEcho(record) };
    },

    continuation(record) {
      const output = isRecord(record.response) ? record.response['output'] : undefined;
      const items = inputItemsSchema.safeParse(record.input);
      const outputItems = inputItemsSchema.safeParse(output);
      if (!items.success || !outputItems.success) throw malformed(record, items.success ? 'response.output' : 'input');
      return [...items.data, ...outputItems.data];
    },

    eventsOf(record) {
      if (record.events === undefined) return undefined;
      const parsed = storedEventsSchema.safeParse(record.events);
      if (!parsed.success) throw malformed(record, 'events');
      // Each entry was checked to be an event of a known type; they were written from a log.
      return parsed.data as unknown as StreamEvent[];
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every event type, checked by the compiler, so a new one cannot be forgotten here. */
const everyEventType: Readonly<Record<StreamEventType, true>> = { start: true, 'text-delta': true, 'tool-call-delta': true, 'upstream-event': true, usage: true, end: true, error: true };
const storedEventsSchema = z.array(z.looseObject({ type: z.enum(Object.keys(everyEventType) as [StreamEventType, ...StreamEventType[]]) }));

const echoSchema = z.object({
  instructions: z.string().nullable(),
  max_output_tokens: z.number().nullable(),
  metadata: z.record(z.string(), z.string()),
  parallel_tool_calls: z.boolean(),
  previous_response_id: z.string().nullable(),
  store: z.boolean(),
  temperature: z.number().nullable(),
  tool_choice: toolChoiceSchema,
  tools: z.array(z.object({ type: z.literal('function'), name: z.string(), description: z.string().nullable(), parameters: z.record(z.string(), z.unknown()).nullable(), strict: z.boolean().nullable() })),
  top_p: z.number().nullable(),
  user: z.string().optional(),
});

function parseEcho(record: ResponseRecord): ResponseRequestEcho {
  const parsed = echoSchema.safeParse(record.request);
  if (!parsed.success) throw malformed(record, 'request');
  const { user, ...echo } = parsed.data;
  return user !== undefined ? { ...echo, user } : echo;
}

// The database is a boundary: a row written by another version, or by hand, is reported with its
// column rather than passed on under a type it does not have.
function malformed(record: ResponseRecord, column: string): SluiceError {
  return new SluiceError('internal_error', { message: `The stored response ${record.id} is malformed (responses.${column}).` });
}
