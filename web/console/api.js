// The console's one way to call the gateway: the admin key in an Authorization header (never in a
// URL), JSON in and out, and a gateway error turned into an ApiError with its code, field and
// message, so every view can show what the server said.
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 when the gateway could not be reached)
   * @param {string} code the error table's code (`forbidden`, `invalid_request`, …)
   * @param {string} message the gateway's message
   * @param {string | null} param the field it names, if any
   */
  constructor(status, code, message, param) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

/** A client bound to one admin key. */
export function createApi(adminKey) {
  async function call(method, path, { query, body, asText = false } = {}) {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(query ?? {})) if (value !== undefined && value !== '') url.searchParams.set(name, String(value));
    let response;
    try {
      response = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${adminKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (error) {
      throw new ApiError(0, 'unreachable', `The gateway could not be reached: ${error instanceof Error ? error.message : String(error)}`, null);
    }
    const text = await response.text();
    if (asText && response.ok) return text;
    let parsed = null;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      parsed = null;
    }
    if (!response.ok) {
      const error = parsed && typeof parsed === 'object' ? parsed.error : undefined;
      throw new ApiError(response.status, error?.code ?? `http_${response.status}`, error?.message ?? (text || response.statusText), error?.param ?? null);
    }
    return parsed;
  }
  return {
    get: (path, query) => call('GET', path, { query }),
    /** The answer's body as text (the usage CSV). */
    getText: (path, query) => call('GET', path, { query, asText: true }),
    post: (path, body) => call('POST', path, { body: body ?? {} }),
    delete: (path) => call('DELETE', path),
  };
}
