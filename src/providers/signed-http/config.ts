// The `signed-http` entry of sluice.yaml: its schema, defaults and resolved form.
import { z } from 'zod';
import { extraHeadersSchema, httpConnectionDefaults, httpConnectionFields, httpUrlSchema, providerCommonFields, type ResolvedConfig } from '../shared/config.js';

const fieldPath = z.string().regex(/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/, 'a dotted field path such as data.content or choices.0.delta.content');

export const signedHttpConfigSchema = z.strictObject({
  type: z.literal('signed-http'),
  /** The streaming endpoint, POSTed with the request body. */
  url: httpUrlSchema(),
  auth: z.discriminatedUnion('scheme', [
    z.strictObject({ scheme: z.literal('none') }),
    z.strictObject({ scheme: z.literal('bearer'), key: z.string().min(1) }),
    z.strictObject({ scheme: z.literal('header'), name: z.string().min(1), key: z.string().min(1) }),
    z.strictObject({ scheme: z.literal('ak-sk-sha256'), ak: z.string().min(1), sk: z.string().min(1) }),
  ]),
  /** Add the caller's user id to the request body and to every JSON event, under this name. */
  userIdField: z.string().min(1).optional(),
  /** Where the answer's text is in each JSON event; a non-JSON event is text as a whole. */
  textPath: fieldPath.optional(),
  /** The event that ends the answer: `path` equal to `equals`; without it, the end of the stream. */
  endWhen: z.strictObject({ path: fieldPath, equals: z.union([z.string(), z.number(), z.boolean()]) }).optional(),
  /** Upstream response headers copied to the client's response (e.g. x-trace-id). */
  passHeaders: z.array(z.string().min(1)).optional(),
  headers: extraHeadersSchema.optional(),
  ...httpConnectionFields,
  ...providerCommonFields,
});

export const signedHttpDefaults = {
  userIdField: 'userId',
  ...httpConnectionDefaults,
};

export type SignedHttpProviderConfig = z.output<typeof signedHttpConfigSchema>;
export type ResolvedSignedHttpProvider = ResolvedConfig<SignedHttpProviderConfig, typeof signedHttpDefaults>;
