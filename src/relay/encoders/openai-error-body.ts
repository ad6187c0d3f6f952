// The OpenAI-shaped error body, used before the first byte (as the response body) and after it
// (as an in-band `data: {"error":…}` chunk), so the official SDKs raise a typed error either way.
import { errorTable } from '../../errors/table.js';
import type { SluiceError } from '../../errors/sluice-error.js';
import type { ErrorPayload } from '../../contract/stream-event.js';

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

export function openAiErrorBody(error: SluiceError | ErrorPayload): OpenAiErrorBody {
  return {
    error: {
      message: error.message,
      type: errorTable[error.code].type,
      param: error.param ?? null,
      code: error.code,
    },
  };
}
