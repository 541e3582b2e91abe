/** The Clock conformance suite (conformance/clock.conformance.ts) against the real clock and `ManualClock`. */
import assert from 'node:assert/strict';
import { ManualClock, maxTimersPerAdvance, systemClock } from '../../dataplane/clock.js';
import { isGalleonError } from '../../proto/errors.js';
import { waitFor } from './helpers.js';
import { clockConformance } from './conformance/clock.conformance.js';

describe('Clock conformance: systemClock', () => {
  clockConformance({
    clock: () => systemClock,
    runUntil: async (what, done) => { await waitFor(what, done, 5_000, 2); },
  });
});

describe('Clock conformance: ManualClock', () => {
  let clock = new ManualClock();
  beforeEach(() => { clock = new ManualClock(1_000); });
  clockConformance({
    clock: () => clock,
    runUntil: (what, done) => {
      // Manual time: 1 ms steps, bounded (a condition that never holds fails instead of looping).
      for (let steps = 0; !done(); steps++) {
        assert.ok(steps < 10_000, `${what}: not within 10 s of manual time`);
        clock.advance(1);
      }
      return Promise.resolve();
    },
  });

  it('moves only when advanced, and reports the timers still pending', () => {
    const c = new ManualClock();
    let fired = 0;
    c.setTimeout(() => { fired++; }, 100);
    assert.equal(c.now(), 0);
    assert.equal(c.advance(99), 0);
    assert.equal(c.pendingTimers, 1);
    assert.equal(c.advance(1), 1);
    assert.equal(c.now(), 100);
    assert.equal(fired, 1);
    assert.equal(c.pendingTimers, 0);
  });

  it('refuses to go back, and stops a timer that re-arms itself at 0 ms forever', () => {
    const c = new ManualClock();
    assert.throws(() => c.advance(-1), (e: unknown) => isGalleonError(e, 'INVARIANT_VIOLATION'));
    const rearm = (): void => { c.setTimeout(rearm, 0); };
    c.setTimeout(rearm, 0);
    assert.throws(() => c.advance(1), (e: unknown) => isGalleonError(e, 'INVARIANT_VIOLATION') && e.message.includes(String(maxTimersPerAdvance)));
  });
});
