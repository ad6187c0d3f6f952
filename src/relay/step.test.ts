// A generation step's cancellation: listeners and the AbortSignal made on demand see one abort,
// with one reason, whichever came first.
import { describe, expect, it } from 'vitest';
import { SluiceError } from '../errors/sluice-error.js';
import { Step } from './step.js';

describe('Step', () => {
  it('calls each listener once, in order, with the reason; a removed one is not called', () => {
    const step = new Step();
    const heard: string[] = [];
    step.onAbort((reason) => heard.push(`first ${(reason as SluiceError).code}`));
    const stop = step.onAbort(() => heard.push('removed'));
    step.onAbort((reason) => heard.push(`last ${(reason as SluiceError).code}`));
    stop();
    stop();
    expect(step.aborted).toBe(false);
    step.abort(new SluiceError('cancelled'));
    step.abort(new SluiceError('upstream_idle_timeout'));
    expect(heard).toEqual(['first cancelled', 'last cancelled']);
    expect(step.aborted).toBe(true);
    expect((step.reason as SluiceError).code).toBe('cancelled');
  });

  it('makes its signal when read, aborting it with the step, or already aborted with the reason', () => {
    const before = new Step();
    const signal = before.signal;
    expect(before.signal).toBe(signal);
    expect(signal.aborted).toBe(false);
    const reason = new SluiceError('upstream_first_byte_timeout');
    before.abort(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);

    const after = new Step();
    after.abort(reason);
    expect(after.signal.aborted).toBe(true);
    expect(after.signal.reason).toBe(reason);
  });

  it('does not call a listener added after the abort, as an AbortSignal would not', () => {
    const step = new Step();
    step.abort(new SluiceError('cancelled'));
    let called = false;
    const stop = step.onAbort(() => (called = true));
    stop();
    expect(called).toBe(false);
  });
});
