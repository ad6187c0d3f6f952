// The request line's logger: the same lines as the app logger, without the redaction pass, at the
// app logger's level even after a reload changes it.
import { describe, expect, it } from 'vitest';
import { createLogger, createUnredactedLogger } from './logger.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  return { lines, stream: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } };
}

describe('createUnredactedLogger', () => {
  it('writes the line the app logger writes, fields in the same order', () => {
    const { lines, stream } = capture();
    const logger = createLogger('info', stream);
    const fields = { requestId: 'r1', method: 'POST', userId: 'u', keyId: undefined, status: 200, stream: false, usage: { promptTokens: 1, completionTokens: 2, totalTokens: 3, estimated: false } };
    logger.info(fields, 'request');
    createUnredactedLogger(logger)().info(fields, 'request');
    const [viaApp, viaChild] = lines.map(({ time: _time, ...rest }) => JSON.stringify(rest));
    expect(viaChild).toBe(viaApp);
  });

  it('follows the app logger when its level changes', () => {
    const { lines, stream } = capture();
    const logger = createLogger('info', stream);
    const requestLogger = createUnredactedLogger(logger);
    logger.level = 'warn';
    requestLogger().info({ requestId: 'hidden' }, 'request');
    logger.level = 'info';
    requestLogger().info({ requestId: 'shown' }, 'request');
    expect(lines.map((line) => line['requestId'])).toStrictEqual(['shown']);
  });

  it('leaves the app logger redacting', () => {
    const { lines, stream } = capture();
    const logger = createLogger('info', stream);
    createUnredactedLogger(logger);
    logger.info({ upstream: { authorization: 'Bearer secret' } }, 'call');
    expect(lines[0]?.['upstream']).toStrictEqual({ authorization: '[redacted]' });
  });
});
