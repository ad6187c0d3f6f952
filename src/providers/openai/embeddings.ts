// One embeddings call in OpenAI's format (`POST …/embeddings`), shared by every provider that
// speaks it at some URL (openai; azure at its deployment's URL). The vectors are passed through as
// the upstream encoded them (`float` arrays or `base64` strings, never converted), with only the
// fields Sluice reads checked (docs/embeddings.md).
import { z } from 'zod';
import type { Dispatcher } from 'undici';
import { SluiceError } from '../../errors/sluice-error.js';
import type { EmbeddingContext, EmbeddingRequest, EmbeddingResult } from '../../contract/provider.js';
import { readBodyText, readJsonResponse, sendUpstream, transportError } from '../shared/http-client.js';
import type { WholeResponse } from '../shared/http-upstream.js';

const embeddingsResponseSchema = z.object({
  model: z.string().optional(),
  data: z.array(z.object({ index: z.number().int().nonnegative(), embedding: z.union([z.array(z.number()), z.string()]) })),
  usage: z.object({ prompt_tokens: z.number().nonnegative(), total_tokens: z.number().nonnegative().optional() }).nullish().catch(null),
});

/**
 * The largest embeddings answer read (64 MiB): a batch of 2,048 inputs of 3,072 dimensions is
 * about 130 MB as float JSON, so such batches must ask for `base64` (a quarter of that) or be split.
 */
export const maxEmbeddingsBodyBytes = 64 * 1024 * 1024;

export interface EmbeddingsCall {
  provider: string;
  dispatcher: Dispatcher;
  url: string;
  /** Content headers and the provider's authentication. */
  headers: Record<string, string>;
  /** The provider's error body → SluiceError, as for chat. */
  mapErrorResponse(response: WholeResponse): Error;
}

/** The JSON body: OpenAI's fields, only those the request sets. */
export function embeddingsBody(request: EmbeddingRequest): string {
  return JSON.stringify({
    model: request.model,
    input: request.input,
    ...(request.encodingFormat !== undefined ? { encoding_format: request.encodingFormat } : {}),
    ...(request.dimensions !== undefined ? { dimensions: request.dimensions } : {}),
    ...(request.userId !== undefined ? { user: request.userId } : {}),
  });
}

/** Sends the call and reads its answer; failures are thrown as SluiceErrors (an abort rethrows the signal's reason). */
export async function sendEmbeddings(call: EmbeddingsCall, request: EmbeddingRequest, context: EmbeddingContext): Promise<EmbeddingResult> {
  const { provider } = call;
  const { signal } = context;
  const response = await sendUpstream({ url: call.url, headers: { ...call.headers, 'x-request-id': context.requestId }, body: embeddingsBody(request), signal, dispatcher: call.dispatcher, provider });
  try {
    if (response.statusCode !== 200) {
      throw call.mapErrorResponse({ status: response.statusCode, headers: response.headers, text: await readBodyText(response.body) });
    }
    const { json } = await readJsonResponse(response.body, maxEmbeddingsBodyBytes, provider);
    const parsed = embeddingsResponseSchema.safeParse(json);
    if (!parsed.success) throw new SluiceError('upstream_protocol_error', { provider, message: `Provider "${provider}" answered the embeddings request without a data list of vectors.` });
    const { data, usage, model } = parsed.data;
    return {
      data: [...data].sort((a, b) => a.index - b.index),
      upstreamModel: model ?? request.model,
      ...(usage ? { usage: { promptTokens: usage.prompt_tokens, totalTokens: usage.total_tokens ?? usage.prompt_tokens } } : {}),
    };
  } catch (error) {
    throw transportError(error, signal, provider);
  } finally {
    if (!response.body.destroyed) response.body.destroy();
  }
}
