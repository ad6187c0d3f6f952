// A provider adapter whose stream is a script the test writes (an async generator of event
// batches), recording the call context of every call: how the relay tests drive real
// Generations without a network.
import type { CallContext, ChatRequest, ProviderAdapter } from '../../src/contract/provider.js';
import type { StreamEvent } from '../../src/contract/stream-event.js';

export type Script = (request: ChatRequest, context: CallContext) => AsyncGenerator<readonly StreamEvent[]>;

export function scriptedAdapter(id: string, script: Script): ProviderAdapter & { calls: CallContext[] } {
  const calls: CallContext[] = [];
  return {
    id,
    type: 'fake',
    models: [],
    calls,
    stream: (request, context) => {
      calls.push(context);
      return script(request, context);
    },
    close: async () => {},
  };
}
