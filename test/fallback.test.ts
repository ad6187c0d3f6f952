// Fallbacks are tried in order, and only while nothing of the answer exists: a 429, a 5xx, a
// refused connection, a first-byte timeout or a drop before the first token moves on to the next
// candidate, and the client sees one clean answer from it. Once content was relayed, a failure is
// an in-band error and no other provider is asked. A client error (400) is never retried
// elsewhere. `provider/model` names route without an alias.
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockOpenAi, sendError, defaultAnswer, type MockOpenAi } from './support/mock-openai.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { postChat, readCompletionText, readErrorAnswer, readStream } from './support/chat-client.js';
import { contentEvent, openStream, roleEvent } from './support/upstream-chunks.js';
import { unusedPort } from './support/tcp.js';
import { within } from './support/wait.js';

const primaryFirstByteMs = 200;

let primary: MockOpenAi;
let backup: MockOpenAi;
let gateway: TestGateway;

beforeAll(async () => {
  primary = await startMockOpenAi({ apiKey: 'sk-primary' });
  backup = await startMockOpenAi({ apiKey: 'sk-backup' });
  const refusingPort = await unusedPort();
  gateway = await startGateway({
    providers: {
      primary: { type: 'openai', baseUrl: primary.baseUrl, apiKey: 'sk-primary', timeouts: { firstByteMs: primaryFirstByteMs } },
      backup: { type: 'openai', baseUrl: backup.baseUrl, apiKey: 'sk-backup' },
      refusing: { type: 'openai', baseUrl: `http://127.0.0.1:${refusingPort.toString()}/v1`, apiKey: 'sk-unused' },
    },
    // Each test here is about one request's fallbacks; a cooldown carried from one test into the
    // next is test/pools.test.ts's subject, so failures rest only a millisecond here.
    router: { cooldown: { initialMs: 1, maxMs: 1 } },
    models: {
      smart: { provider: 'primary', model: 'gpt-4o', fallbacks: ['backup/gpt-4o-mini'] },
      unreachable: { provider: 'refusing', model: 'gpt-4o', fallbacks: ['backup/gpt-4o-mini'] },
      // The primary, then a provider that refuses connections, then an alias.
      chain: { provider: 'primary', model: 'gpt-4o', fallbacks: ['refusing/gpt-4o', 'spare'] },
      spare: { provider: 'backup', model: 'gpt-4o-spare' },
    },
  });
});
afterAll(async () => {
  await gateway?.close();
  await primary?.close();
  await backup?.close();
});
beforeEach(() => {
  primary.reset();
  backup.reset();
});

function failWith(mock: MockOpenAi, status: number): void {
  mock.handlers.push((_request, response) => {
    sendError(response, status, `failing with ${status.toString()} on purpose`, status === 400 ? 'invalid_request_error' : 'server_error', null);
    return true;
  });
}

/** The primary sends `events`, then drops the connection. */
function primaryDropsAfter(events: string): void {
  primary.handlers.push(async (_request, response: ServerResponse) => {
    openStream(response);
    response.write(events);
    await new Promise((resolve) => setTimeout(resolve, 20));
    response.socket?.destroy();
    return true;
  });
}

function expectServedByBackup(model = 'gpt-4o-mini'): void {
  expect(backup.requests).toHaveLength(1);
  expect(backup.requests[0]!.body['model']).toBe(model);
}

describe('falls back before the first token', () => {
  it.each([429, 500, 503])('primary answers %i: status 200, the backup\'s exact answer', async (status) => {
    failWith(primary, status);
    const response = await postChat(gateway.url, { model: 'smart' });
    expect(response.status).toBe(200);
    const answer = await readStream(response);
    expect(answer.content).toBe(defaultAnswer);
    expect(answer.done).toBe(true);
    expect(answer.errorCode).toBeUndefined();
    // The client sees the name it asked for, whoever answered.
    expect([...answer.models]).toEqual(['smart']);
    expect(primary.requests).toHaveLength(1);
    expectServedByBackup();
  });

  it.each([true, false])('stream %s: a refused connection falls back', async (stream) => {
    const response = await postChat(gateway.url, { model: 'unreachable', stream });
    expect(response.status).toBe(200);
    if (stream) {
      const answer = await readStream(response);
      expect(answer.content).toBe(defaultAnswer);
      expect(answer.done).toBe(true);
    } else {
      expect(await readCompletionText(response)).toBe(defaultAnswer);
    }
    expectServedByBackup();
  });

  it('a first-byte timeout falls back, and the primary\'s request is closed', async () => {
    primary.handlers.push((_request, response) => {
      openStream(response);
      response.write(roleEvent);
      return true; // then nothing
    });
    const started = performance.now();
    const response = await postChat(gateway.url, { model: 'smart' });
    expect(response.status).toBe(200);
    const answer = await readStream(response);
    expect(answer.content).toBe(defaultAnswer);
    expect(answer.done).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(primaryFirstByteMs);
    expectServedByBackup();
    await within(primary.requests[0]!.closed, 1000, 'the primary request to close');
  });

  it('a drop after the role chunk, before any content, falls back', async () => {
    primaryDropsAfter(roleEvent);
    const answer = await readStream(await postChat(gateway.url, { model: 'smart' }));
    expect(answer.content).toBe(defaultAnswer);
    expect(answer.done).toBe(true);
    expectServedByBackup();
  });

  it('tries the fallbacks in order, aliases included', async () => {
    failWith(primary, 503);
    const answer = await readStream(await postChat(gateway.url, { model: 'chain' }));
    expect(answer.content).toBe(defaultAnswer);
    expect(answer.done).toBe(true);
    expect(primary.requests).toHaveLength(1);
    expectServedByBackup('gpt-4o-spare');
  });

  it('when every candidate fails, the client gets the last failure as a status', async () => {
    failWith(primary, 429);
    failWith(backup, 503);
    const answer = await readErrorAnswer(await postChat(gateway.url, { model: 'smart' }));
    expect(answer).toMatchObject({ status: 503, code: 'upstream_unavailable' });
    expect(primary.requests).toHaveLength(1);
    expect(backup.requests).toHaveLength(1);
  });
});

describe('never falls back', () => {
  it('after content was relayed: the partial answer, then an in-band error; the backup is never asked', async () => {
    primaryDropsAfter(roleEvent + contentEvent('partial '));
    const response = await postChat(gateway.url, { model: 'smart' });
    expect(response.status).toBe(200);
    const answer = await readStream(response);
    expect(answer.content).toBe('partial ');
    expect(answer.errorCode).toBe('upstream_stream_interrupted');
    expect(answer.done).toBe(false);
    expect(answer.afterEnd).toBe(0);
    expect(backup.requests).toHaveLength(0);
  });

  it('on a 400 from the primary: the client gets the 400', async () => {
    failWith(primary, 400);
    const answer = await readErrorAnswer(await postChat(gateway.url, { model: 'smart' }));
    expect(answer).toMatchObject({ status: 400, code: 'upstream_bad_request', type: 'invalid_request_error' });
    expect(backup.requests).toHaveLength(0);
  });
});

describe('provider/model names', () => {
  it.each([true, false])('stream %s: "backup/some-model" routes to that provider and model without an alias', async (stream) => {
    const response = await postChat(gateway.url, { model: 'backup/some-model', stream });
    expect(response.status).toBe(200);
    if (stream) expect((await readStream(response)).content).toBe(defaultAnswer);
    else expect(await readCompletionText(response)).toBe(defaultAnswer);
    expect(primary.requests).toHaveLength(0);
    expectServedByBackup('some-model');
  });
});
