// The error table is part of the public contract (status codes, OpenAI error types, retry hints):
// this pins it, so a change is deliberate and shows up in review, and checks every entry is
// well-formed. One function turns any throw into a SluiceError without leaking what it wrapped.
import { describe, expect, it } from 'vitest';
import { openAiErrorBody } from '../relay/encoders/openai-error-body.js';
import { SluiceError, toSluiceError } from './sluice-error.js';
import { errorTable, isErrorCode, type OpenAiErrorType } from './table.js';
import { errorPayload } from '../contract/stream-event.js';

const openAiTypes: readonly OpenAiErrorType[] = [
  'invalid_request_error',
  'authentication_error',
  'permission_error',
  'not_found_error',
  'rate_limit_error',
  'api_error',
  'timeout_error',
  'server_error',
];

describe('error table', () => {
  it('is pinned: code → status, type, retryable', () => {
    const pinned = Object.fromEntries(Object.entries(errorTable).map(([code, spec]) => [code, [spec.status, spec.type, spec.retryable]]));
    expect(pinned).toEqual({
      invalid_json: [400, 'invalid_request_error', false],
      invalid_request: [400, 'invalid_request_error', false],
      body_too_large: [413, 'invalid_request_error', false],
      model_not_supported: [400, 'invalid_request_error', false],
      model_not_found: [404, 'not_found_error', false],
      generation_not_found: [404, 'not_found_error', false],
      conversation_not_found: [404, 'not_found_error', false],
      response_not_found: [404, 'not_found_error', false],
      not_found: [404, 'not_found_error', false],
      invalid_frame: [400, 'invalid_request_error', false],
      config_invalid: [400, 'invalid_request_error', false],
      reload_unavailable: [409, 'invalid_request_error', false],
      method_not_allowed: [405, 'invalid_request_error', false],
      missing_credentials: [401, 'authentication_error', false],
      invalid_api_key: [401, 'authentication_error', false],
      api_key_revoked: [401, 'authentication_error', false],
      api_key_expired: [401, 'authentication_error', false],
      invalid_token: [401, 'authentication_error', false],
      invalid_ticket: [401, 'authentication_error', false],
      forbidden: [403, 'permission_error', false],
      model_not_allowed: [403, 'permission_error', false],
      rate_limited: [429, 'rate_limit_error', true],
      quota_exceeded: [429, 'rate_limit_error', false],
      budget_exceeded: [429, 'rate_limit_error', false],
      identity_provider_unavailable: [503, 'server_error', true],
      store_unavailable: [503, 'server_error', true],
      shutting_down: [503, 'server_error', true],
      client_too_slow: [500, 'server_error', true],
      cancelled: [499, 'api_error', false],
      internal_error: [500, 'server_error', true],
      generation_interrupted: [502, 'api_error', true],
      upstream_auth_failed: [502, 'api_error', false],
      upstream_content_filtered: [400, 'invalid_request_error', false],
      upstream_bad_request: [400, 'invalid_request_error', false],
      upstream_model_not_found: [404, 'not_found_error', false],
      upstream_rate_limited: [429, 'rate_limit_error', true],
      upstream_quota_exceeded: [429, 'rate_limit_error', false],
      provider_limit_reached: [429, 'rate_limit_error', true],
      upstream_unavailable: [503, 'api_error', true],
      upstream_error: [502, 'api_error', true],
      upstream_connect_failed: [502, 'api_error', true],
      upstream_connect_timeout: [504, 'timeout_error', true],
      upstream_first_byte_timeout: [504, 'timeout_error', true],
      upstream_idle_timeout: [504, 'timeout_error', true],
      upstream_total_timeout: [504, 'timeout_error', true],
      upstream_protocol_error: [502, 'api_error', true],
      upstream_event_too_large: [502, 'api_error', false],
      upstream_stream_interrupted: [502, 'api_error', true],
    });
  });

  it.each(Object.entries(errorTable))('%s is well-formed', (code, spec) => {
    expect(code).toMatch(/^[a-z]+(_[a-z]+)*$/);
    expect(spec.status).toBeGreaterThanOrEqual(400);
    expect(spec.status).toBeLessThan(600);
    expect(openAiTypes).toContain(spec.type);
    expect(spec.message.trim()).toBe(spec.message);
    expect(spec.message).toMatch(/^[A-Z].*\.$/);
    // Default messages reach clients: they must not promise a status or name internals.
    expect(spec.message).not.toMatch(/undefined|null|\$\{/);
  });

  it('isErrorCode accepts table codes only, not inherited keys', () => {
    expect(isErrorCode('upstream_idle_timeout')).toBe(true);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode('')).toBe(false);
  });
});

describe('SluiceError', () => {
  it('takes status, retryable and its default message from the table', () => {
    const error = new SluiceError('upstream_rate_limited');
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: 'SluiceError', code: 'upstream_rate_limited', status: 429, retryable: true, message: errorTable.upstream_rate_limited.message });
  });

  it('carries param, upstream status, retry-after, provider and cause', () => {
    const cause = new Error('socket hang up');
    const error = new SluiceError('upstream_rate_limited', { message: 'slow down', param: 'model', upstreamStatus: 429, retryAfterSeconds: 3, provider: 'openai', cause });
    expect(error).toMatchObject({ message: 'slow down', param: 'model', upstreamStatus: 429, retryAfterSeconds: 3, provider: 'openai', cause });
    expect(errorPayload(error)).toEqual({ code: 'upstream_rate_limited', message: 'slow down', retryable: true, param: 'model', retryAfterSeconds: 3 });
    expect(openAiErrorBody(error)).toEqual({ error: { message: 'slow down', type: 'rate_limit_error', param: 'model', code: 'upstream_rate_limited' } });
  });

  it('leaves optional fields out of the payload and sends param null', () => {
    const error = new SluiceError('internal_error');
    expect(errorPayload(error)).toEqual({ code: 'internal_error', message: 'The gateway failed unexpectedly.', retryable: true });
    expect(openAiErrorBody(error).error.param).toBeNull();
  });
});

describe('toSluiceError', () => {
  it('returns a SluiceError as it is', () => {
    const error = new SluiceError('cancelled');
    expect(toSluiceError(error)).toBe(error);
  });

  it.each([
    ['an Error', new Error('connect to postgres://admin:hunter2@db failed')],
    ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['a string', 'boom'],
    ['undefined', undefined],
    ['null', null],
    ['an object', { code: 'upstream_error', message: 'looks like ours' }],
  ])('maps %s to internal_error, keeping it only as the cause', (_name, thrown) => {
    const error = toSluiceError(thrown);
    expect(error).toBeInstanceOf(SluiceError);
    expect(error.code).toBe('internal_error');
    expect(error.status).toBe(500);
    // What was thrown can hold secrets or internals: the client sees the table's message only.
    expect(error.message).toBe(errorTable.internal_error.message);
    expect(error.cause).toBe(thrown);
  });
});
