// Schemas shared by the admin API and the CLI: a user id, and a key's limits.
import { z } from 'zod';
import type { Limits } from '../../contract/principal.js';

/** User ids appear in URLs, logs and Redis keys: short, printable ASCII without spaces. */
export const userIdSchema = z.string().regex(/^[A-Za-z0-9._@:-]{1,128}$/, 'must be 1 to 128 characters of A-Z, a-z, 0-9 and . _ @ : -');

const positive = z.number({ error: 'must be a positive whole number' }).int('must be a whole number').positive('must be positive');

/** Parses to a Limits with absent fields omitted (zod would leave them as undefined). */
export const limitsInputSchema = z
  .strictObject({
    requestsPerMinute: positive.optional(),
    tokensPerMinute: positive.optional(),
    concurrentStreams: positive.optional(),
    dailyTokens: positive.optional(),
    monthlyTokens: positive.optional(),
  })
  .transform((limits): Limits => Object.fromEntries(Object.entries(limits).filter(([, value]) => value !== undefined)));
