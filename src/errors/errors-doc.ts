// Renders docs/errors.md from the error table, so the reference can never drift from the code
// (errors-doc.test.ts fails when the committed page is stale; `npm run docs` rewrites it).
import { errorTable } from './table.js';

export function renderErrorsDoc(): string {
  const rows = Object.entries(errorTable).map(
    ([code, spec]) => `| \`${code}\` | ${spec.status.toString()} | \`${spec.type}\` | ${spec.retryable ? 'yes' : 'no'} | ${spec.message} |`,
  );
  return [
    '# Error reference',
    '',
    '<!-- Generated from src/errors/table.ts by `npm run docs`; do not edit by hand. -->',
    '',
    'Every error Sluice reports has one of these codes. Before the first byte of a response it is the',
    'HTTP status and an OpenAI-shaped body `{"error":{"message","type","param","code"}}` (with',
    '`Retry-After` when known). After the first byte of a stream it arrives in-band: on the',
    'OpenAI-compatible route as a `data: {"error":{…}}` chunk, after which the stream ends without',
    '`[DONE]`. `retryable` says whether the same request may succeed later.',
    '',
    '| code | status | type | retryable | meaning |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
