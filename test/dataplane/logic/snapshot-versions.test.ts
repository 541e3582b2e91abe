/**
 * The pure snapshot rules (dataplane/logic/snapshot-versions.ts): which versions a write keeps,
 * which the pruner may drop, which one a read at a cut sees, and how restores chain.
 * The retention rule is checked exhaustively against its definition on small histories.
 */
import assert from 'node:assert/strict';
import {
  keepArrivingOlder, keepOnOverwrite, nextCut, retainedCuts, versionsToDrop, viewStep, visibleAt,
} from '../../../dataplane/logic/snapshot-versions.js';
import type { VersionStamp } from '../../../dataplane/logic/snapshot-versions.js';

const v = (epoch: number, seq: number): VersionStamp => ({ epoch, seq });

describe('snapshot-versions (pure)', () => {
  it('a write keeps the old entry only across an epoch boundary', () => {
    assert.equal(keepOnOverwrite(v(1, 3), v(2, 4)), true);
    assert.equal(keepOnOverwrite(v(2, 3), v(2, 4)), false);
    assert.equal(keepArrivingOlder(v(3, 9), v(2, 4)), true);
    assert.equal(keepArrivingOlder(v(3, 9), v(3, 4)), false);
  });

  it('keeps exactly the newest version below each cut, and the newest entry', () => {
    // Block history at epochs 1,1,2,4,4 (live at 6); cuts at 2 and 5.
    const versions = [v(1, 1), v(1, 2), v(2, 3), v(4, 4), v(4, 5)];
    const drop = versionsToDrop(versions, v(6, 6), [2, 5], 6);
    assert.deepEqual(drop, [v(1, 1), v(2, 3), v(4, 4)]);
    // Nothing needed without cuts, except what lies above the horizon (an unknown cut may need it).
    assert.deepEqual(versionsToDrop(versions, v(6, 6), [], 3), [v(1, 1), v(1, 2)]);
    // Without a live entry the newest version is the block's newest entry: it stays.
    assert.deepEqual(versionsToDrop([v(1, 1), v(3, 2)], null, [], 10), [v(1, 1)]);
  });

  it('retention matches its definition on every small history (exhaustive)', () => {
    for (let mask = 0; mask < 1 << 6; mask++) {
      const entries: VersionStamp[] = [];
      for (let e = 1; e <= 6; e++) if ((mask & (1 << (e - 1))) !== 0) entries.push(v(e, e));
      if (entries.length < 2) continue;
      const live = entries[entries.length - 1] ?? null;
      const versions = entries.slice(0, -1);
      for (let cutMask = 0; cutMask < 1 << 7; cutMask++) {
        const cuts = [1, 2, 3, 4, 5, 6, 7].filter((c) => (cutMask & (1 << (c - 1))) !== 0);
        const dropped = versionsToDrop(versions, live, cuts, 7);
        // Definition: a version is needed iff it is what some cut sees.
        const seen = new Set(cuts.map((c) => visibleAt(entries, c)).filter((x) => x !== null).map((x) => x.epoch));
        const expected = versions.filter((x) => !seen.has(x.epoch));
        assert.deepEqual(dropped, expected, `entries ${JSON.stringify(entries)} cuts ${JSON.stringify(cuts)}`);
      }
    }
  });

  it('a read at a cut sees the newest entry written below it', () => {
    const entries = [v(1, 1), v(3, 2), v(3, 5), v(7, 9)];
    assert.equal(visibleAt(entries, 1), null);
    assert.deepEqual(visibleAt(entries, 3), v(1, 1));
    assert.deepEqual(visibleAt(entries, 4), v(3, 5));
    assert.deepEqual(visibleAt(entries, 100), v(7, 9));
  });

  it('a view applies the newest restore below its cut', () => {
    const view = { volumeId: 'a', below: null, restores: [{ atEpoch: 5, cut: 3 }, { atEpoch: 9, cut: 7 }], parent: null };
    assert.deepEqual(viewStep(view), { volumeId: 'a', below: null, floor: 9, thenBelow: 7 });
    assert.deepEqual(viewStep({ ...view, below: 8 }), { volumeId: 'a', below: 8, floor: 5, thenBelow: 3 });
    assert.deepEqual(viewStep({ ...view, below: 5 }), { volumeId: 'a', below: 5, floor: 0, thenBelow: null });
  });

  it('cuts: above every PG epoch; retained set is sorted and unique', () => {
    assert.equal(nextCut([3, 9, 4]), 10);
    assert.deepEqual(retainedCuts([8, 3], [{ cut: 3 }, { cut: 5 }]), [3, 5, 8]);
    assert.throws(() => nextCut([]));
  });
});
