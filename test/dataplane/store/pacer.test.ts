/**
 * The pacer of background store work: a step waits out what is left of its budget (the slowest
 * of its limits), measured from when the step began, and an abort ends a wait at once. A fake
 * clock and a recording wait make the budget arithmetic exact; the abort test uses the real sleep.
 */
import assert from 'node:assert/strict';
import { Pacer } from '../../../dataplane/store/pacer.js';

function fakePacer(signal?: AbortSignal): { pacer: Pacer; clock: { ms: number }; waits: number[] } {
  const clock = { ms: 1_000 };
  const waits: number[] = [];
  const pacer = new Pacer({
    ...(signal === undefined ? {} : { signal }),
    nowMs: () => clock.ms,
    wait: (ms) => { waits.push(ms); clock.ms += ms; return Promise.resolve(); },
  });
  return { pacer, clock, waits };
}

describe('dataplane/store pacer', () => {
  it('waits out the rest of a step\'s budget, measured from when the step began', async () => {
    const { pacer, clock, waits } = fakePacer();
    pacer.begin();
    clock.ms += 30; // the step's own work
    await pacer.end({ amount: 100, perSecond: 1_000 }); // 100 ms budget
    assert.deepEqual(waits, [70]);
  });

  it('does not wait when the step already took longer than its budget', async () => {
    const { pacer, clock, waits } = fakePacer();
    clock.ms += 250;
    await pacer.end({ amount: 100, perSecond: 1_000 });
    assert.deepEqual(waits, []);
  });

  it('lets the slowest limit set the pace', async () => {
    const { pacer, waits } = fakePacer();
    // 16 blocks at 10,000/s allow 1.6 ms; 8 MiB at 16 MiB/s need 500 ms.
    await pacer.end({ amount: 16, perSecond: 10_000 }, { amount: 8 * 1024 * 1024, perSecond: 16 * 1024 * 1024 });
    assert.deepEqual(waits, [500]);
  });

  it('starts the next step when one ends, so the time between steps counts against the next budget', async () => {
    const { pacer, clock, waits } = fakePacer();
    await pacer.end({ amount: 10, perSecond: 100 }); // waits 100 ms, next step starts after it
    clock.ms += 40;
    await pacer.end({ amount: 10, perSecond: 100 });
    assert.deepEqual(waits, [100, 60]);
  });

  it('does not wait once its signal has aborted', async () => {
    const ctl = new AbortController();
    ctl.abort();
    const { pacer, waits } = fakePacer(ctl.signal);
    await pacer.end({ amount: 1, perSecond: 1 });
    assert.deepEqual(waits, []);
  });

  it('ends a real wait as soon as its signal aborts', async () => {
    const ctl = new AbortController();
    const pacer = new Pacer({ signal: ctl.signal });
    let ended = false;
    const step = pacer.end({ amount: 3_600, perSecond: 1 }).then(() => { ended = true; }); // an hour's budget
    await Promise.resolve();
    assert.equal(ended, false, 'the step waits for its budget');
    ctl.abort();
    await step; // without the abort this would outlive the test's timeout
    assert.equal(ended, true);
  });
});
