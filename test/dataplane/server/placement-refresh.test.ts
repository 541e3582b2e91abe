import assert from 'node:assert/strict';
import { isGalleonError } from '../../../proto/errors.js';
import type { PlacementSource, VolumePlacement } from '../../../dataplane/placement.js';
import { PlacementRefresher } from '../../../dataplane/server/placement-refresh.js';
import { ManualClock, systemClock } from '../../../dataplane/clock.js';
import { waitFor } from '../helpers.js';

/** A placement source that counts its reads (the refresher's only dependency). */
class CountingSource implements PlacementSource {
  reads = 0;
  getPlacement(volumeId: string): Promise<VolumePlacement> {
    return Promise.resolve({ volumeId, pgCount: 1, groups: [], nodes: {} });
  }

  refresh(volumeId: string): Promise<VolumePlacement> {
    this.reads++;
    return new Promise((resolve) => setTimeout(() => resolve({ volumeId, pgCount: 1, groups: [], nodes: {} }), 5));
  }
}

describe('dataplane/server placement refresher', () => {
  it('shares one read among concurrent callers and spaces reads of a volume', async () => {
    const source = new CountingSource();
    const r = new PlacementRefresher(source, systemClock, { minIntervalMs: 50, perSecond: 1000, burst: 1000 });
    const since = r.now();
    await Promise.all(Array.from({ length: 100 }, () => r.fresh('v', since)));
    assert.equal(source.reads, 1, '100 callers, one read');
    const t0 = performance.now();
    await r.fresh('v', r.now());
    assert.equal(source.reads, 2, 'a caller that arrived after the read started gets a new one');
    assert.ok(performance.now() - t0 >= 40, 'not before the interval since the last read');
  });

  it('refuses beyond the node-wide budget without reading', async () => {
    const source = new CountingSource();
    const r = new PlacementRefresher(source, systemClock, { minIntervalMs: 50, perSecond: 1, burst: 3 });
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => r.fresh(`v${i}`, r.now())));
    assert.equal(results.filter((x) => x.status === 'fulfilled').length, 3);
    assert.ok(results.every((x) => x.status === 'fulfilled' || isGalleonError(x.reason, 'UNAVAILABLE')));
    assert.equal(source.reads, 3);
  });

  it('waits out the interval on its injected clock: a ManualClock read is spaced only when the clock advances', async () => {
    const source = new CountingSource();
    const clock = new ManualClock(1_000);
    const r = new PlacementRefresher(source, clock, { minIntervalMs: 200, perSecond: 1000, burst: 1000 });
    await r.fresh('v', r.now());
    let second = false;
    const next = r.fresh('v', r.now()).then(() => { second = true; });
    await waitFor('the second read to wait on the clock', () => clock.pendingTimers === 1, 2_000, 1);
    clock.advance(199);
    assert.equal(clock.pendingTimers, 1, 'no read before the interval has passed on the clock');
    assert.equal(source.reads, 1);
    clock.advance(1);
    await next;
    assert.equal(second, true);
    assert.equal(source.reads, 2, 'the read happens once the manual clock passed the interval');
  });
});
