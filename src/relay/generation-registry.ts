// Finds generations by id for the routes that attach to one (a second tab, a reconnect with
// Last-Event-ID) or cancel one. Finished generations stay findable for a retention window, so a
// late reconnect learns the answer is complete (204) instead of starting over. Memory here; in
// cluster mode a Redis implementation finds generations running on other nodes.
import type { SluiceError } from '../errors/sluice-error.js';
import type { Generation, GenerationView } from './generation.js';

export interface GenerationInfo {
  readonly id: string;
  /** The user the generation runs for; only they (or an admin) may attach or cancel. */
  readonly ownerId: string;
  /** The model name the client asked for. */
  readonly model: string;
  readonly conversationId?: string;
  readonly startedAt: number;
}

export interface FoundGeneration {
  readonly info: GenerationInfo;
  readonly generation: GenerationView;
}

export interface GenerationRegistry {
  /** Tracks a generation started on this node until `retentionMs` after it finished. */
  track(generation: Generation, info: GenerationInfo): void;
  find(id: string): Promise<FoundGeneration | undefined>;
  /** Cancels a running generation; false when it is unknown or already finished. */
  cancel(id: string, reason: SluiceError): Promise<boolean>;
}

export interface MemoryRegistryOptions {
  /** How long a finished generation stays attachable, in ms. */
  retentionMs: number;
}

export function createMemoryGenerationRegistry(options: MemoryRegistryOptions): GenerationRegistry {
  const generations = new Map<string, { info: GenerationInfo; generation: Generation }>();
  return {
    track(generation, info) {
      generations.set(info.id, { info, generation });
      generation.packWhenFinished();
      void generation.done.then(() => {
        const timer = setTimeout(() => generations.delete(info.id), options.retentionMs);
        // A retained log must not keep the process alive at shutdown.
        timer.unref();
      });
    },
    async find(id) {
      return generations.get(id);
    },
    async cancel(id, reason) {
      const found = generations.get(id);
      if (!found || found.generation.finished) return false;
      found.generation.cancel(reason);
      return true;
    },
  };
}
