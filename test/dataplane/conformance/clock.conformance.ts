/**
 * One conformance suite for `Clock` (dataplane/clock.ts): timers fire once, no earlier than
 * asked, in order of due time and then of setting; a cancelled timer never fires; `now()` is
 * monotonic and has moved at least the delay when a timer fires. Run by
 * test/dataplane/clock.test.ts against `systemClock` (real time) and `ManualClock`. Not a test
 * file itself.
 */
import assert from 'node:assert/strict';
import type { Clock } from '../../../dataplane/clock.js';

export interface ClockUnderTest {
  clock: () => Clock;
  /** Lets time pass (really, or by advancing a manual clock) until `done()` holds. */
  runUntil: (what: string, done: () => boolean) => Promise<void>;
}

export function clockConformance(t: ClockUnderTest): void {
  it('fires timers in order of due time, and equal ones in the order they were set', async () => {
    const c = t.clock();
    const fired: string[] = [];
    c.setTimeout(() => fired.push('30'), 30);
    c.setTimeout(() => fired.push('10a'), 10);
    c.setTimeout(() => fired.push('20'), 20);
    c.setTimeout(() => fired.push('10b'), 10);
    c.setTimeout(() => fired.push('0'), 0);
    await t.runUntil('five timers to fire', () => fired.length === 5);
    assert.deepEqual(fired, ['0', '10a', '10b', '20', '30']);
  });

  it('fires a timer once, not before its delay has passed on now()', async () => {
    const c = t.clock();
    const start = c.now();
    let firedAt: number | undefined;
    let count = 0;
    c.setTimeout(() => { count++; firedAt = c.now(); }, 25);
    await t.runUntil('the timer to fire', () => count > 0);
    const late = c.setTimeout(() => undefined, 10); // time moves on past the first timer
    await t.runUntil('time to move past the first timer', () => c.now() - start >= 40);
    c.clearTimeout(late);
    assert.equal(count, 1);
    assert.ok(firedAt !== undefined && firedAt - start >= 25, `fired after ${String(firedAt === undefined ? NaN : firedAt - start)} ms`);
  });

  it('never fires a cancelled timer; cancelling twice or after firing is harmless', async () => {
    const c = t.clock();
    const fired: string[] = [];
    const cancelled = c.setTimeout(() => fired.push('cancelled'), 10);
    const done = c.setTimeout(() => fired.push('kept'), 30);
    c.clearTimeout(cancelled);
    c.clearTimeout(cancelled);
    c.clearTimeout(undefined);
    await t.runUntil('the kept timer to fire', () => fired.includes('kept'));
    c.clearTimeout(done);
    assert.deepEqual(fired, ['kept']);
  });

  it('a timer set from a firing timer fires after it', async () => {
    const c = t.clock();
    const fired: string[] = [];
    c.setTimeout(() => { fired.push('outer'); c.setTimeout(() => fired.push('inner'), 0); }, 5);
    c.setTimeout(() => fired.push('later'), 50);
    await t.runUntil('all three to fire', () => fired.length === 3);
    assert.deepEqual(fired, ['outer', 'inner', 'later']);
  });

  it('now() never goes back', async () => {
    const c = t.clock();
    let last = c.now();
    let steps = 0;
    await t.runUntil('time to pass', () => {
      const n = c.now();
      assert.ok(n >= last, `now() went back from ${last} to ${n}`);
      last = n;
      return ++steps >= 20;
    });
  });
}
