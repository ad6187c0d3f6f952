// POST /v1/embeddings: OpenAI's embeddings API, served by the providers that have embeddings
// (openai, azure) through the embedding service's admission and accounting. The body is
// validated field by field; vectors come back as the provider encoded them (`float` or
// `base64`); a client that leaves ends the upstream request at once (docs/embeddings.md).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Config } from '../../config/config.js';
import { SluiceError } from '../../errors/sluice-error.js';
import { actFor } from '../../auth/authenticate.js';
import { upstreamUserId } from '../../contract/principal.js';
import type { EmbeddingService } from '../../relay/embedding-service.js';
import { readJsonBody } from '../request-body.js';
import { callerOf, type RequestContext } from '../request-context.js';
import { sendJson } from '../respond.js';
import { parseBody } from '../validate.js';

/** OpenAI's limits on one request: 2,048 inputs, each at most 8,192 tokens for its current models. */
const maxInputs = 2048;
const maxTextChars = 1_000_000;

const tokenIds = z.array(z.number().int().nonnegative(), 'must be a list of token ids').min(1, 'must not be empty');

export const embeddingsBodySchema = z.looseObject({
  model: z.string().min(1).max(256),
  input: z.union(
    [
      z.string().min(1, 'must not be empty').max(maxTextChars),
      z.array(z.string().min(1, 'must not contain empty strings').max(maxTextChars)).min(1, 'must not be empty').max(maxInputs),
      tokenIds.max(maxTextChars),
      z.array(tokenIds).min(1, 'must not be empty').max(maxInputs),
    ],
    { error: `must be a string, a list of strings, a list of token ids, or a list of such lists (at most ${maxInputs.toString()} inputs)` },
  ),
  encoding_format: z.enum(['float', 'base64'], 'must be float or base64').optional(),
  dimensions: z.number().int().positive().optional(),
  user: z.string().max(256).optional(),
});

export type EmbeddingsBody = z.infer<typeof embeddingsBodySchema>;

export interface EmbeddingsRouteDependencies {
  config: Config;
  embeddings: EmbeddingService;
}

export function createEmbeddingsRoute(dependencies: EmbeddingsRouteDependencies) {
  const { config } = dependencies;

  return async function embeddings(context: RequestContext, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = parseBody(embeddingsBodySchema, await readJsonBody(request, config.server.bodyLimitBytes));
    context.model = body.model;
    // As in chat completions, `user` names the end user: a service credential may act for them.
    const principal = body.user !== undefined ? actFor(callerOf(context), body.user, 'user') : callerOf(context);
    context.principal = principal;
    const userId = upstreamUserId(principal);

    const leaving = new AbortController();
    const onClose = () => leaving.abort(new SluiceError('cancelled', { message: 'The client went away; the embeddings request was cancelled.' }));
    response.once('close', onClose);
    if (response.destroyed) onClose();
    try {
      const outcome = await dependencies.embeddings.embed({
        model: body.model,
        input: body.input,
        ...(body.encoding_format !== undefined ? { encodingFormat: body.encoding_format } : {}),
        ...(body.dimensions !== undefined ? { dimensions: body.dimensions } : {}),
        // Sent upstream as OpenAI's `user` only when the client named one, as chat completions does.
        ...(body.user !== undefined && userId !== undefined ? { userId } : {}),
        principal,
        requestId: context.requestId,
        signal: leaving.signal,
      });
      context.provider = outcome.provider;
      context.usage = { promptTokens: outcome.promptTokens, completionTokens: 0, totalTokens: outcome.promptTokens, estimated: outcome.estimated };
      context.outcome = 'completed';
      sendJson(response, 200, {
        object: 'list',
        data: outcome.result.data.map((item) => ({ object: 'embedding', index: item.index, embedding: item.embedding })),
        // The name the client asked for, as the chat routes answer.
        model: body.model,
        usage: { prompt_tokens: outcome.promptTokens, total_tokens: outcome.promptTokens },
      });
    } finally {
      response.off('close', onClose);
    }
  };
}
